#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <vector>

#include "tokenmeter/limits.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter {
namespace {

namespace chrono = std::chrono;

// An independent model of periods, built only from the standard library's
// calendar: a day is a period boundary for an anchor when its day of month is
// min(anchor, last day of its month). A period runs from one boundary to the
// next, so listing boundaries day by day gives every period.
std::int64_t seconds_of(chrono::sys_days day) { return std::int64_t{day.time_since_epoch().count()} * 86400; }

bool is_boundary(chrono::year_month_day date, unsigned anchor) {
    const unsigned last = static_cast<unsigned>(chrono::year_month_day_last(date.year(), chrono::month_day_last(date.month())).day());
    return static_cast<unsigned>(date.day()) == std::min(anchor, last);
}

TEST(Period, EveryDayOf400YearsForEveryAnchorMatchesTheCalendarModel) {
    const chrono::sys_days first = chrono::sys_days(chrono::year(1969) / 12 / 1);
    const chrono::sys_days epoch = chrono::sys_days(chrono::year(1970) / 1 / 1);
    const chrono::sys_days last = chrono::sys_days(chrono::year(2370) / 2 / 1);
    const chrono::sys_days days_end = chrono::sys_days(chrono::year(2370) / 1 / 1);  // 400 years from 1970
    std::vector<std::vector<std::int64_t>> boundaries(32);
    for (chrono::sys_days day = first; day < last; day += chrono::days(1)) {
        const chrono::year_month_day date(day);
        for (unsigned anchor = 1; anchor <= 31; ++anchor) {
            if (is_boundary(date, anchor)) boundaries[anchor].push_back(seconds_of(day));
        }
    }
    std::mt19937 random(2026);
    std::vector<std::size_t> index(32, 0);
    std::int64_t checked = 0;
    for (chrono::sys_days day = epoch; day < days_end; day += chrono::days(1)) {
        const std::int64_t midnight = seconds_of(day);
        const std::int64_t instants[] = {midnight, midnight + static_cast<std::int64_t>(random() % 86400), midnight + 86399};
        for (int anchor = 1; anchor <= 31; ++anchor) {
            auto& i = index[static_cast<std::size_t>(anchor)];
            const auto& list = boundaries[static_cast<std::size_t>(anchor)];
            while (list[i + 1] <= midnight) ++i;
            const Period expected{list[i], list[i + 1]};
            for (std::int64_t instant : instants) {
                auto period = period_containing(instant, anchor);
                ASSERT_TRUE(period.has_value());
                ASSERT_EQ(*period, expected) << "instant " << instant << " anchor " << anchor;
                ++checked;
            }
        }
    }
    EXPECT_EQ(checked, std::int64_t{146097} * 31 * 3);
}

TEST(Period, AnchorOn31stClampsFebruaryAndReturns) {
    auto at = [](const char* text) { return parse_rfc3339(text).value(); };
    auto period = period_containing(at("2025-02-15T12:00:00Z"), 31).value();
    EXPECT_EQ(format_rfc3339(period.start_seconds), "2025-01-31T00:00:00Z");
    EXPECT_EQ(format_rfc3339(period.end_seconds), "2025-02-28T00:00:00Z");
    auto next = next_period(period, 31).value();
    EXPECT_EQ(format_rfc3339(next.start_seconds), "2025-02-28T00:00:00Z");
    EXPECT_EQ(format_rfc3339(next.end_seconds), "2025-03-31T00:00:00Z");
    auto leap = period_containing(at("2024-02-29T23:59:59Z"), 31).value();
    EXPECT_EQ(format_rfc3339(leap.start_seconds), "2024-02-29T00:00:00Z");
    EXPECT_EQ(format_rfc3339(leap.end_seconds), "2024-03-31T00:00:00Z");
    auto april = period_containing(at("2024-05-01T00:00:00Z"), 31).value();
    EXPECT_EQ(format_rfc3339(april.start_seconds), "2024-04-30T00:00:00Z");
    auto anchor30 = period_containing(at("2100-03-01T00:00:00Z"), 30).value();  // 2100 is not a leap year
    EXPECT_EQ(format_rfc3339(anchor30.start_seconds), "2100-02-28T00:00:00Z");
    EXPECT_EQ(format_rfc3339(anchor30.end_seconds), "2100-03-30T00:00:00Z");
}

TEST(Period, RefusesBadAnchorsAndInstants) {
    EXPECT_EQ(period_containing(0, 0).error().code, "invalid_anchor_day");
    EXPECT_EQ(period_containing(0, 32).error().code, "invalid_anchor_day");
    EXPECT_EQ(period_containing(0, -1).error().code, "invalid_anchor_day");
    EXPECT_EQ(period_containing(-1, 1).error().code, "instant_out_of_range");
    EXPECT_EQ(period_containing(limits::instant_end, 1).error().code, "instant_out_of_range");
    EXPECT_EQ(period_containing(INT64_MAX, 1).error().code, "instant_out_of_range");
    EXPECT_EQ(period_containing(INT64_MIN, 31).error().code, "instant_out_of_range");
    auto latest = period_containing(limits::instant_end - 1, 1);
    ASSERT_TRUE(latest.has_value());
    EXPECT_EQ(format_rfc3339(latest->end_seconds), "9999-12-01T00:00:00Z");
    auto latest31 = period_containing(limits::instant_end - 1, 31).value();
    EXPECT_EQ(format_rfc3339(latest31.end_seconds), "9999-12-31T00:00:00Z");
}

TEST(Rfc3339, ParsesWhatLemonSqueezyAndReceiptsSend) {
    EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z").value(), 0);
    EXPECT_EQ(parse_rfc3339("2021-08-11T13:47:28.000000Z").value(), 1628689648);
    EXPECT_EQ(parse_rfc3339("2021-08-11T15:47:28+02:00").value(), 1628689648);
    EXPECT_EQ(parse_rfc3339("2021-08-11T09:47:28-04:00").value(), 1628689648);
    EXPECT_EQ(parse_rfc3339("2024-02-29T23:59:59Z").value(), 1709251199);
}

TEST(Rfc3339, RefusesImpossibleDates) {
    for (const char* bad : {"2023-02-29T00:00:00Z", "2024-02-30T00:00:00Z", "2024-04-31T00:00:00Z",
                            "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z", "2024-01-00T00:00:00Z",
                            "2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z", "2024-01-01T23:59:60Z",
                            "2024-01-01 00:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00+25:00",
                            "2024-01-01T00:00:00.Z", "2024-1-01T00:00:00Z", "", "tomorrow",
                            "2024-01-01T00:00:00Zjunk", "2100-02-29T00:00:00Z",
                            // Valid locally, but in year 0000 or 10000 in UTC.
                            "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"}) {
        auto parsed = parse_rfc3339(bad);
        EXPECT_FALSE(parsed.has_value()) << bad;
        if (!parsed) {
            EXPECT_EQ(parsed.error().code, "invalid_timestamp");
        }
    }
}

TEST(Rfc3339, FormatsAndParsesBackEveryHundredthDay) {
    for (std::int64_t t = 0; t < limits::instant_end; t += 86400LL * 97 + 3607) {
        EXPECT_EQ(parse_rfc3339(format_rfc3339(t)).value(), t);
    }
}

}  // namespace
}  // namespace tokenmeter
