#include "tokenmeter/period.hpp"

#include <algorithm>
#include <optional>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter {

namespace {

constexpr std::int64_t seconds_per_day = 86400;
// RFC 3339 has four-digit years: 0001-01-01T00:00:00Z up to 10000-01-01 exclusive.
constexpr std::int64_t instant_format_min = -62135596800;
constexpr std::int64_t instant_format_end = 253402300800;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

CivilDate clamp_to_month(std::int32_t year, std::uint32_t month, int anchor_day) {
    const std::uint32_t last = days_in_month(year, month);
    return CivilDate{year, month, std::min(static_cast<std::uint32_t>(anchor_day), last)};
}

CivilDate month_after(CivilDate date, int anchor_day) {
    if (date.month == 12) return clamp_to_month(date.year + 1, 1, anchor_day);
    return clamp_to_month(date.year, date.month + 1, anchor_day);
}

CivilDate month_before(CivilDate date, int anchor_day) {
    if (date.month == 1) return clamp_to_month(date.year - 1, 12, anchor_day);
    return clamp_to_month(date.year, date.month - 1, anchor_day);
}

std::int64_t start_of(CivilDate date) { return days_from_civil(date) * seconds_per_day; }

void append_padded(std::string& out, std::int64_t value, int width) {
    std::string digits = std::to_string(value);
    if (digits.size() < static_cast<std::size_t>(width)) out.append(static_cast<std::size_t>(width) - digits.size(), '0');
    out += digits;
}

// Reads exactly `width` ASCII digits at `at`.
std::optional<int> fixed_digits(std::string_view text, std::size_t at, std::size_t width) {
    if (at + width > text.size()) return std::nullopt;
    int value = 0;
    for (std::size_t i = at; i < at + width; ++i) {
        if (text[i] < '0' || text[i] > '9') return std::nullopt;
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

Error invalid_timestamp(std::string_view text) {
    const std::string shown = json_input::utf8_prefix(text, 64);
    return make_error("invalid_timestamp", "\"" + shown + "\" is not an RFC 3339 UTC timestamp");
}

// Parses the zone suffix at `at` ("Z", "+hh:mm", "-hh:mm") into an offset.
std::optional<std::int64_t> zone_offset_seconds(std::string_view text, std::size_t at) {
    if (at + 1 == text.size() && (text[at] == 'Z' || text[at] == 'z')) return 0;
    if (at + 6 != text.size() || (text[at] != '+' && text[at] != '-') || text[at + 3] != ':') return std::nullopt;
    auto hours = fixed_digits(text, at + 1, 2);
    auto minutes = fixed_digits(text, at + 4, 2);
    if (!hours || !minutes || *hours > 23 || *minutes > 59) return std::nullopt;
    const std::int64_t offset = *hours * 3600 + *minutes * 60;
    return text[at] == '+' ? offset : -offset;
}

}  // namespace

bool operator==(const CivilDate& a, const CivilDate& b) {
    return a.year == b.year && a.month == b.month && a.day == b.day;
}

bool operator==(const Period& a, const Period& b) {
    return a.start_seconds == b.start_seconds && a.end_seconds == b.end_seconds;
}

bool is_leap_year(std::int32_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

std::uint32_t days_in_month(std::int32_t year, std::uint32_t month) {
    TM_ASSERT(month >= 1 && month <= 12);
    constexpr std::uint32_t days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && is_leap_year(year)) return 29;
    return days[month - 1];
}

// Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar.
std::int64_t days_from_civil(CivilDate date) {
    TM_ASSERT(date.month >= 1 && date.month <= 12);
    TM_ASSERT(date.day >= 1 && date.day <= days_in_month(date.year, date.month));
    const std::int64_t y = static_cast<std::int64_t>(date.year) - (date.month <= 2 ? 1 : 0);
    const std::int64_t era = floor_div(y, 400);
    const std::int64_t year_of_era = y - era * 400;
    const std::int64_t m = date.month;
    const std::int64_t day_of_year = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + date.day - 1;
    const std::int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

CivilDate civil_from_days(std::int64_t days) {
    const std::int64_t z = days + 719468;
    const std::int64_t era = floor_div(z, 146097);
    const std::int64_t day_of_era = z - era * 146097;
    const std::int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const std::int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const std::int64_t mp = (5 * day_of_year + 2) / 153;
    const std::int64_t day = day_of_year - (153 * mp + 2) / 5 + 1;
    const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
    return CivilDate{static_cast<std::int32_t>(year), static_cast<std::uint32_t>(month), static_cast<std::uint32_t>(day)};
}

CivilDate civil_date_of(std::int64_t instant_seconds) {
    return civil_from_days(floor_div(instant_seconds, seconds_per_day));
}

Result<Period, Error> period_containing(std::int64_t instant_seconds, int anchor_day) {
    if (anchor_day < 1 || anchor_day > 31) {
        return unexpected(make_error("invalid_anchor_day", "the anchor day must be 1-31, not " + std::to_string(anchor_day)));
    }
    if (instant_seconds < limits::instant_min || instant_seconds >= limits::instant_end) {
        return unexpected(make_error("instant_out_of_range",
                                     "the instant must be from 1970-01-01T00:00:00Z to before 9999-12-01T00:00:00Z"));
    }
    const CivilDate today = civil_date_of(instant_seconds);
    CivilDate start = clamp_to_month(today.year, today.month, anchor_day);
    if (today.day < start.day) start = month_before(start, anchor_day);
    Period period{start_of(start), start_of(month_after(start, anchor_day))};
    TM_ASSERT(period.contains(instant_seconds));
    return period;
}

Result<Period, Error> next_period(const Period& period, int anchor_day) {
    return period_containing(period.end_seconds, anchor_day);
}

std::string format_rfc3339(std::int64_t instant_seconds) {
    TM_ASSERT(instant_seconds >= instant_format_min && instant_seconds < instant_format_end);
    const CivilDate date = civil_date_of(instant_seconds);
    const std::int64_t second_of_day = instant_seconds - floor_div(instant_seconds, seconds_per_day) * seconds_per_day;
    std::string out;
    out.reserve(20);
    append_padded(out, date.year, 4);
    out += '-';
    append_padded(out, date.month, 2);
    out += '-';
    append_padded(out, date.day, 2);
    out += 'T';
    append_padded(out, second_of_day / 3600, 2);
    out += ':';
    append_padded(out, second_of_day / 60 % 60, 2);
    out += ':';
    append_padded(out, second_of_day % 60, 2);
    out += 'Z';
    return out;
}

Result<std::int64_t, Error> parse_rfc3339(std::string_view text) {
    if (text.size() < 20 || text.size() > 40) return unexpected(invalid_timestamp(text));
    auto year = fixed_digits(text, 0, 4);
    auto month = fixed_digits(text, 5, 2);
    auto day = fixed_digits(text, 8, 2);
    auto hour = fixed_digits(text, 11, 2);
    auto minute = fixed_digits(text, 14, 2);
    auto second = fixed_digits(text, 17, 2);
    const bool separators = text[4] == '-' && text[7] == '-' && (text[10] == 'T' || text[10] == 't') &&
                            text[13] == ':' && text[16] == ':';
    if (!year || !month || !day || !hour || !minute || !second || !separators || *year == 0) {
        return unexpected(invalid_timestamp(text));
    }
    if (*month < 1 || *month > 12 || *day < 1 ||
        static_cast<std::uint32_t>(*day) > days_in_month(*year, static_cast<std::uint32_t>(*month)) || *hour > 23 ||
        *minute > 59 || *second > 59) {
        return unexpected(invalid_timestamp(text));
    }
    std::size_t at = 19;
    if (text[at] == '.') {
        ++at;
        const std::size_t digits_start = at;
        while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
        if (at == digits_start || at - digits_start > 9) return unexpected(invalid_timestamp(text));
    }
    auto offset = zone_offset_seconds(text, at);
    if (!offset) return unexpected(invalid_timestamp(text));
    const CivilDate date{*year, static_cast<std::uint32_t>(*month), static_cast<std::uint32_t>(*day)};
    const std::int64_t local = start_of(date) + *hour * 3600 + *minute * 60 + *second;
    const std::int64_t instant = local - *offset;
    // An offset can move a time early in year 0001 or late in 9999 out of
    // those years in UTC, where format_rfc3339 cannot write it (and a receipt
    // verifier would accept an instant its signer asserts against).
    if (instant < instant_format_min || instant >= instant_format_end) return unexpected(invalid_timestamp(text));
    return instant;
}

}  // namespace tokenmeter
