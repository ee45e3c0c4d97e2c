//! The current time as the tracking table stores it (RFC 3339, UTC,
//! milliseconds: `2024-01-02T03:04:05.678Z`, what SQLite's
//! `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` gives), computed here rather
//! than by SQL: an application may define its own `strftime` on the
//! connection, and SQLite would call it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in UTC. A clock before 1970 reads as 1970-01-01.
pub(crate) fn now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_millis(since.as_millis())
}

/// `millis` after the Unix epoch, in the tracking table's form.
fn format_millis(millis: u128) -> String {
    let seconds = millis / 1000;
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        millis % 1000
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_are_formatted_as_sqlite_does() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year), 23:59:59.999.
        assert_eq!(format_millis(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(format_millis(951_868_800_000), "2000-03-01T00:00:00.000Z");
        // 2100 is not a leap year.
        assert_eq!(format_millis(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(format_millis(1_704_164_645_678), "2024-01-02T03:04:05.678Z");
    }

    #[test]
    fn every_day_of_four_centuries_agrees_with_sqlite() -> rusqlite::Result<()> {
        let conn = rusqlite::Connection::open_in_memory()?;
        let mut statement =
            conn.prepare("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?1, 'unixepoch')")?;
        // Every day from 1970 to 2370, at a time that moves through the day.
        for day in (0..146_097_i64).step_by(7) {
            let millis = day * 86_400_000 + (day * 7_919_123) % 86_400_000;
            let expected: String =
                statement.query_row([millis as f64 / 1000.0], |row| row.get(0))?;
            assert_eq!(format_millis(millis as u128), expected, "day {day}");
        }
        Ok(())
    }
}
