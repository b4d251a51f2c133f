//! What a database error means for whoever waits on it: the database away, its storage
//! full, or anything else. The HTTP edge answers 503, 507 and 500 for these; the audit
//! appender passes the class on with a record it could not store, so a request waiting
//! for its record learns why.

/// The class of a database failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Down, restarting, refusing connections, or every connection busy past the pool's
    /// acquire timeout: passes without the caller changing anything.
    Unavailable,
    /// No room left to store what the request needs.
    Full,
    Other,
}

impl Fault {
    pub fn of(err: &sqlx::Error) -> Self {
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable,
            sqlx::Error::Database(e) => Self::of_code(e.code().as_deref().unwrap_or("")),
            _ => Self::Other,
        }
    }

    /// The class of the first database error in `err`'s cause chain.
    pub fn in_chain(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(e) = e.downcast_ref::<sqlx::Error>() {
                return Self::of(e);
            }
            if let Some(super::StoreError::Database(e)) = e.downcast_ref::<super::StoreError>() {
                return Self::of(e);
            }
            next = e.source();
        }
        Self::Other
    }

    /// PostgreSQL SQLSTATEs (appendix A: class 08 connection exceptions, 57P01–57P03 the
    /// server shutting down or starting, 53300 too many connections, 53100 disk full) and
    /// SQLite's SQLITE_FULL (13).
    pub fn of_code(code: &str) -> Self {
        match code {
            "57P01" | "57P02" | "57P03" | "53300" => Self::Unavailable,
            c if c.starts_with("08") => Self::Unavailable,
            "53100" | "13" => Self::Full,
            _ => Self::Other,
        }
    }

    /// The graver of two faults, for a request that saw several: a full disk needs an
    /// operator, an outage passes by itself.
    pub fn worse(self, other: Self) -> Self {
        match (self, other) {
            (Self::Full, _) | (_, Self::Full) => Self::Full,
            (Self::Unavailable, _) | (_, Self::Unavailable) => Self::Unavailable,
            _ => Self::Other,
        }
    }
}

impl super::StoreError {
    pub fn fault(&self) -> Fault {
        match self {
            Self::Database(e) => Fault::of(e),
            _ => Fault::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Fault;

    #[test]
    fn outages_and_full_disks_are_told_apart_from_other_database_errors() {
        for code in ["57P01", "57P03", "08006", "08001", "53300"] {
            assert_eq!(Fault::of_code(code), Fault::Unavailable, "{code}");
        }
        for code in ["53100", "13"] {
            assert_eq!(Fault::of_code(code), Fault::Full, "{code}");
        }
        for code in ["23505", "2067", "5", ""] {
            assert_eq!(Fault::of_code(code), Fault::Other, "{code}");
        }
        assert_eq!(Fault::of(&sqlx::Error::PoolTimedOut), Fault::Unavailable);
        assert_eq!(Fault::of(&sqlx::Error::RowNotFound), Fault::Other);
    }

    #[test]
    fn the_class_is_found_through_a_cause_chain() {
        let err = anyhow::Error::new(sqlx::Error::PoolTimedOut).context("appending");
        assert_eq!(Fault::in_chain(err.as_ref()), Fault::Unavailable);
        let err = anyhow::Error::new(super::super::StoreError::Database(sqlx::Error::PoolClosed))
            .context("parking");
        assert_eq!(Fault::in_chain(err.as_ref()), Fault::Unavailable);
        assert_eq!(
            Fault::in_chain(anyhow::anyhow!("no database here").as_ref()),
            Fault::Other
        );
        assert_eq!(Fault::Full.worse(Fault::Unavailable), Fault::Full);
        assert_eq!(Fault::Other.worse(Fault::Unavailable), Fault::Unavailable);
    }
}
