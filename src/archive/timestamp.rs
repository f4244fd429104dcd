//! The one timestamp every member of a bundle ZIP carries, in MS-DOS form.

/// 1980-01-01 00:00:00 UTC, the earliest time a ZIP can hold.
pub const DOS_EPOCH: i64 = 315_532_800;
/// 2107-12-31 23:59:58 UTC, the latest.
pub const DOS_MAX: i64 = 4_354_819_198;

/// An MS-DOS date and time, as ZIP headers store them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DosDateTime {
    /// `(year - 1980) << 9 | month << 5 | day`.
    pub date: u16,
    /// `hour << 11 | minute << 5 | second / 2`.
    pub time: u16,
}

impl DosDateTime {
    /// 1980-01-01 00:00:00, used when no `SOURCE_DATE_EPOCH` is given.
    pub const DEFAULT: DosDateTime = DosDateTime {
        date: (1 << 5) | 1,
        time: 0,
    };

    /// From Unix seconds (as `SOURCE_DATE_EPOCH` gives), in UTC, clamped to what ZIP can hold;
    /// odd seconds round down (DOS time has two-second resolution).
    pub fn from_unix(seconds: i64) -> DosDateTime {
        let seconds = seconds.clamp(DOS_EPOCH, DOS_MAX);
        let days = seconds.div_euclid(86_400);
        let rem = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        DosDateTime {
            date: (((year - 1980) as u16) << 9) | ((month as u16) << 5) | day as u16,
            time: (((rem / 3600) as u16) << 11)
                | ((((rem % 3600) / 60) as u16) << 5)
                | ((rem % 60) / 2) as u16,
        }
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_and_clamps() {
        assert_eq!(DosDateTime::from_unix(0), DosDateTime::DEFAULT);
        assert_eq!(DosDateTime::from_unix(DOS_EPOCH), DosDateTime::DEFAULT);
        // 2024-02-29 13:45:31 UTC → 13:45:30
        let t = DosDateTime::from_unix(1_709_214_331);
        assert_eq!(t.date, ((2024 - 1980) << 9) | (2 << 5) | 29);
        assert_eq!(t.time, (13 << 11) | (45 << 5) | 15);
        assert_eq!(
            DosDateTime::from_unix(i64::MAX),
            DosDateTime::from_unix(DOS_MAX)
        );
    }
}
