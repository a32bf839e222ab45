//! Which configured tables one run covers (`--tables`, `--exclude-tables`) and which of
//! them it reloads from scratch (`--full-refresh`). Tables are named as in the config: by
//! target, by source (`schema.table`) or by the source's table name, with `*` and `?` globs.

use std::collections::{BTreeMap, BTreeSet};

use super::{TableConfig, TableSource};

#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only tables matching one of these; empty: every table.
    pub tables: Vec<String>,
    /// Never tables matching one of these.
    pub exclude: Vec<String>,
    /// Reload these from scratch (`Some(empty)`: every selected table).
    pub full_refresh: Option<Vec<String>>,
}

/// The tables a run covers, and the targets among them it reloads.
#[derive(Debug)]
pub struct Selected {
    pub tables: Vec<TableConfig>,
    pub reload: BTreeSet<String>,
}

impl Selection {
    pub fn apply(&self, tables: &[TableConfig]) -> Result<Selected, String> {
        for p in self.tables.iter().chain(&self.exclude).chain(self.full_refresh.iter().flatten()) {
            if !tables.iter().any(|t| matches(p, t)) {
                let names: Vec<String> = tables.iter().map(|t| t.target.clone()).collect();
                return Err(format!(
                    "no table in the config matches {p:?}; tables are named by target, source or source table \
                     name, with * and ? (the config has: {})",
                    names.join(", ")
                ));
            }
        }
        let chosen: Vec<TableConfig> = tables
            .iter()
            .filter(|t| self.tables.is_empty() || self.tables.iter().any(|p| matches(p, t)))
            .filter(|t| !self.exclude.iter().any(|p| matches(p, t)))
            .cloned()
            .collect();
        if chosen.is_empty() {
            return Err("--tables and --exclude-tables leave no table to run".into());
        }
        let reload = match &self.full_refresh {
            None => BTreeSet::new(),
            Some(ps) => chosen
                .iter()
                .filter(|t| ps.is_empty() || ps.iter().any(|p| matches(p, t)))
                .map(|t| t.target.clone())
                .collect(),
        };
        if let Some(ps) = &self.full_refresh
            && !ps.is_empty()
            && reload.is_empty()
        {
            return Err(format!("--full-refresh {} names no table this run covers", ps.join(",")));
        }
        Ok(Selected { tables: chosen, reload })
    }
}

/// The schemas whose tables the pattern entries need listed (`None`: the connection's default).
pub fn pattern_schemas(tables: &[TableConfig]) -> BTreeSet<Option<String>> {
    tables
        .iter()
        .filter_map(|t| match &t.source {
            TableSource::Pattern { schema, .. } => Some(schema.clone()),
            _ => None,
        })
        .collect()
}

/// The config's tables with each pattern entry replaced by the tables it matches in `listed`
/// (schema → table names). A table that an entry names on its own, or an earlier pattern
/// took, is not taken again; a name BigQuery cannot take as a table is left out. Each such
/// case, and a pattern that matches nothing, is said in `notes`.
pub fn expand(
    tables: &[TableConfig],
    listed: &BTreeMap<Option<String>, Vec<String>>,
) -> (Vec<TableConfig>, Vec<String>) {
    let explicit = |schema: &Option<String>, name: &str| {
        tables
            .iter()
            .any(|t| matches!(&t.source, TableSource::Table { schema: s, name: n } if s == schema && n == name))
    };
    let mut out: Vec<TableConfig> = Vec::new();
    let mut notes = Vec::new();
    for t in tables {
        let TableSource::Pattern { schema, pattern, exclude } = &t.source else {
            out.push(t.clone());
            continue;
        };
        let mut matched = 0;
        for name in listed.get(schema).into_iter().flatten() {
            if !glob(pattern, name) || exclude.iter().any(|e| glob(e, name)) || explicit(schema, name) {
                continue;
            }
            matched += 1;
            if out.iter().chain(tables.iter()).any(|o| o.target.eq_ignore_ascii_case(name)) {
                notes.push(format!(
                    "{}: {name} is already loaded by another entry; the pattern leaves it",
                    t.source_name()
                ));
                continue;
            }
            if !super::validate::is_bq_name(name) || name.to_ascii_lowercase().starts_with("_aurora2bq") {
                notes.push(format!(
                    "{}: {name} cannot be a BigQuery table name; list it in an entry of its own with a `target`",
                    t.source_name()
                ));
                continue;
            }
            let mut one = t.clone();
            one.source = TableSource::Table { schema: schema.clone(), name: name.clone() };
            one.target = name.clone();
            out.push(one);
        }
        if matched == 0 {
            notes.push(format!("{} matches no table yet; it is looked up again at every run", t.source_name()));
        }
    }
    (out, notes)
}

/// Whether `pattern` names `table` by its target, its source, or its source's table name.
fn matches(pattern: &str, table: &TableConfig) -> bool {
    let mut names = vec![table.target.clone(), table.source_name()];
    if let TableSource::Table { name, .. } = &table.source {
        names.push(name.clone());
    }
    names.iter().any(|n| glob(pattern, n))
}

/// `*` matches any run of characters, `?` one character; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("orders", "orders", true),
            ("ord*", "orders", true),
            ("*ers", "orders", true),
            ("o?ders", "orders", true),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("orders", "orders_v2", false),
            ("*_v?", "orders_v2", true),
        ] {
            assert_eq!(glob(p, t), want, "{p} ~ {t}");
        }
    }

    fn tables() -> Vec<TableConfig> {
        let mut t = vec![
            TableConfig::simple(Some("public"), "orders"),
            TableConfig::simple(Some("public"), "customers"),
            TableConfig::simple(Some("audit"), "events"),
        ];
        t[1].target = "crm_customers".into();
        t
    }

    #[test]
    fn selects_by_target_source_or_name_and_excludes() {
        let s = Selection { tables: vec!["public.*".into()], exclude: vec!["crm_*".into()], full_refresh: None };
        let got = s.apply(&tables()).unwrap();
        assert_eq!(got.tables.iter().map(|t| t.target.as_str()).collect::<Vec<_>>(), ["orders"]);
        let s = Selection { tables: vec!["customers".into(), "events".into()], ..Default::default() };
        let got = s.apply(&tables()).unwrap();
        assert_eq!(got.tables.len(), 2);
    }

    #[test]
    fn patterns_expand_to_their_tables_leaving_explicit_and_excluded_ones() {
        let mut pattern = TableConfig::simple(Some("app"), "x");
        pattern.source =
            TableSource::Pattern { schema: Some("app".into()), pattern: "t*".into(), exclude: vec!["t_audit*".into()] };
        pattern.target = "app.t*".into();
        let mut explicit = TableConfig::simple(Some("app"), "t2");
        explicit.target = "t2_custom".into();
        let listed = BTreeMap::from([(
            Some("app".to_string()),
            vec!["t1".into(), "t2".into(), "t_audit_log".into(), "other".into(), "t-bad".into()],
        )]);
        let (tables, notes) = expand(&[pattern.clone(), explicit], &listed);
        let got: Vec<(String, String)> = tables.iter().map(|t| (t.source_name(), t.target.clone())).collect();
        assert_eq!(
            got,
            [("app.t1".into(), "t1".into()), ("app.t2".into(), "t2_custom".into())],
            "the explicit entry wins, excluded and unmatched tables are left"
        );
        assert!(notes.iter().any(|n| n.contains("t-bad")), "{notes:?}");
        let (none, notes) = expand(&[pattern], &BTreeMap::new());
        assert!(none.is_empty() && notes[0].contains("matches no table yet"), "{notes:?}");
    }

    #[test]
    fn full_refresh_names_tables_or_all_and_unknown_names_are_errors() {
        let s = Selection { full_refresh: Some(vec![]), ..Default::default() };
        assert_eq!(s.apply(&tables()).unwrap().reload.len(), 3);
        let s = Selection { full_refresh: Some(vec!["orders".into()]), ..Default::default() };
        assert_eq!(s.apply(&tables()).unwrap().reload, BTreeSet::from(["orders".to_string()]));
        let s = Selection { tables: vec!["nope".into()], ..Default::default() };
        assert!(s.apply(&tables()).unwrap_err().contains("\"nope\""));
        let s = Selection { exclude: vec!["*".into()], ..Default::default() };
        assert!(s.apply(&tables()).unwrap_err().contains("no table to run"));
        let s = Selection {
            tables: vec!["orders".into()],
            full_refresh: Some(vec!["events".into()]),
            ..Default::default()
        };
        assert!(s.apply(&tables()).unwrap_err().contains("names no table"));
    }
}
