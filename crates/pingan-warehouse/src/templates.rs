//! Every fixed statement the services send, with sample parameters, for the compatibility
//! checks: `tests/tests/smoke.rs` runs them on the local ClickHouse 18.16 and `tests/chdb/` on
//! a current release. The query service's statements are generated per request and come from
//! `pingan_query::sql_templates`; together the two lists are every statement either service
//! sends.

/// The aggregator's statements (audit lookups, sealing, retention, detection), named.
pub fn all() -> Vec<(String, String)> {
    crate::audit::templates()
        .into_iter()
        .chain(crate::alerts::templates())
        .chain(crate::access::templates())
        .chain(crate::identity::templates())
        .chain(crate::sealed::templates())
        .chain(crate::retention::templates())
        .chain(crate::dead_letters::templates())
        .map(|(name, sql)| (name.to_owned(), sql))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_no_placeholder_is_left() {
        let all = super::all();
        let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for (name, sql) in &all {
            assert!(!sql.contains('?'), "{name}: {sql}");
        }
    }
}
