// Usage periods: one calendar month, anchored on a day of the month, in UTC.
//
// A period anchored on day D starts at 00:00:00Z on day min(D, days in that
// month) and ends (exclusive) at the same clamped day of the next month. So an
// anchor on the 31st gives Jan 31 -> Feb 28 (29 in leap years) -> Mar 31: it
// ends February on its last day and returns to the 31st after.
//
// Time is a parameter (unix seconds); this module never reads a clock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

struct CivilDate {
    std::int32_t year = 1970;
    std::uint32_t month = 1;  // 1..12
    std::uint32_t day = 1;    // 1..days_in_month
};

bool operator==(const CivilDate&, const CivilDate&);

bool is_leap_year(std::int32_t year);
std::uint32_t days_in_month(std::int32_t year, std::uint32_t month);

// Days since 1970-01-01 for a valid proleptic Gregorian date, and back.
std::int64_t days_from_civil(CivilDate date);
CivilDate civil_from_days(std::int64_t days);

// The instant's UTC calendar date. The instant must be in range.
CivilDate civil_date_of(std::int64_t instant_seconds);

struct Period {
    std::int64_t start_seconds = 0;  // inclusive, 00:00:00Z on the anchor day
    std::int64_t end_seconds = 0;    // exclusive

    bool contains(std::int64_t instant_seconds) const {
        return instant_seconds >= start_seconds && instant_seconds < end_seconds;
    }
};

bool operator==(const Period&, const Period&);

// The period containing `instant_seconds` for `anchor_day` (1..31).
// Errors: invalid_anchor_day, instant_out_of_range (before 1970 or at or after
// 9999-12-01, whose period could end past year 9999).
Result<Period, Error> period_containing(std::int64_t instant_seconds, int anchor_day);

// The period that follows `period` for the same anchor day.
Result<Period, Error> next_period(const Period& period, int anchor_day);

// "2026-11-24T00:00:00Z". The instant must be in years 0001-9999 (a period
// containing 1970-01-01 may start on 1969-12-31).
std::string format_rfc3339(std::int64_t instant_seconds);

// Parses an RFC 3339 timestamp ("2026-11-24T10:11:12Z", with optional
// fractional seconds, 'Z' or a numeric offset) into unix seconds, truncating
// fractions. Impossible dates (February 30, hour 24) and instants outside
// years 0001-9999 in UTC (which format_rfc3339 cannot write) are
// invalid_timestamp.
Result<std::int64_t, Error> parse_rfc3339(std::string_view text);

}  // namespace tokenmeter
