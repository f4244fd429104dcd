//! Rendering error chains, and recognising a full disk. Below every layer: it knows only
//! `std::error::Error` and `std::io::Error`.

use std::error::Error;

/// The texts of `err` and its causes, outermost first, leaving out each cause whose text the
/// text kept before it already contains. Many errors embed their source in their own message
/// (`write x: No space left on device (os error 28)`) and also return it from `source()`;
/// printed naively, the chain then says everything twice.
pub fn chain(err: &dyn Error) -> Vec<String> {
    let mut texts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        // Trimmed: a text ending in a newline (toml's, when not wrapped in `lock::TomlError`)
        // is embedded without it.
        let text = cause.to_string().trim_end().to_owned();
        let repeated = texts.last().is_some_and(|last| last.contains(&text));
        if !repeated && !text.is_empty() {
            texts.push(text);
        }
        source = cause.source();
    }
    texts
}

/// `err` and its causes on one line, separated by `: `, without repetitions (see [`chain`]).
pub fn one_line(err: &dyn Error) -> String {
    chain(err).join(": ")
}

/// Whether `err` says the disk (or the user's quota on it) is full: ENOSPC or EDQUOT.
pub fn is_disk_full(err: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
    }
    #[cfg(not(unix))]
    {
        // ERROR_DISK_FULL and ERROR_HANDLE_DISK_FULL.
        matches!(err.raw_os_error(), Some(112) | Some(39))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "write /s/tmp/x: {}", self.0)
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let err = Outer(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(
            one_line(&err),
            format!(
                "write /s/tmp/x: {}",
                std::io::Error::from_raw_os_error(libc::ENOSPC)
            )
        );
        assert!(is_disk_full(&err.0));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(
            libc::EACCES
        )));
    }

    #[test]
    fn a_cause_ending_in_a_newline_is_still_recognised() {
        let err = anyhow::anyhow!("inner cause\n").context("outer context: inner cause");
        let err: &(dyn Error + 'static) = err.as_ref();
        assert_eq!(chain(err), ["outer context: inner cause"]);
    }

    #[test]
    fn a_new_cause_is_kept() {
        let err = anyhow::anyhow!("inner cause").context("outer context");
        let err: &(dyn Error + 'static) = err.as_ref();
        assert_eq!(chain(err), ["outer context", "inner cause"]);
    }
}
