//! The data statement of each load mode, run from the staging table inside the same
//! transaction as the state update.

use super::schema::quote;
use crate::bq_model::BqType;

/// A GoogleSQL string literal.
pub fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'").replace('\n', "\\n"))
}

pub const EXTRACTED_AT: &str = "_aurora2bq_extracted_at";
pub const RUN_ID: &str = "_aurora2bq_run_id";

/// What every statement needs: the tables, the copied columns, optional metadata values.
pub struct Load<'a> {
    pub target: String,
    pub staging: String,
    pub columns: &'a [String],
    /// (µs of the run's start, run id) when metadata columns are on.
    pub metadata: Option<(i64, &'a str)>,
}

impl Load<'_> {
    /// Target column list and the matching select list from staging (`S.` prefixed when
    /// `alias` is set).
    fn lists(&self, alias: Option<&str>) -> (String, String) {
        let p = alias.map(|a| format!("{a}.")).unwrap_or_default();
        let mut target: Vec<String> = self.columns.iter().map(|c| quote(&[c])).collect();
        let mut select: Vec<String> = self.columns.iter().map(|c| format!("{p}{}", quote(&[c]))).collect();
        if let Some((at, run)) = self.metadata {
            target.push(quote(&[EXTRACTED_AT]));
            target.push(quote(&[RUN_ID]));
            select.push(format!("TIMESTAMP_MICROS({at})"));
            select.push(string_literal(run));
        }
        (target.join(", "), select.join(", "))
    }

    /// Full refresh: the target's rows become the staging table's.
    pub fn replace(&self) -> String {
        self.replace_live(None)
    }

    /// Full refresh of a table whose soft-deleted rows (non-NULL, or TRUE for a BOOL
    /// column) never reach the target, as a merge would have left it.
    pub fn replace_live(&self, soft_delete: Option<&(String, BqType)>) -> String {
        let (cols, select) = self.lists(None);
        let live = match soft_delete {
            Some((col, BqType::Bool)) => format!(" WHERE {} IS NOT TRUE", quote(&[col])),
            Some((col, _)) => format!(" WHERE {} IS NULL", quote(&[col])),
            None => String::new(),
        };
        format!(
            "DELETE FROM {t} WHERE TRUE;\nINSERT INTO {t} ({cols}) SELECT {select} FROM {s}{live}",
            t = self.target,
            s = self.staging
        )
    }

    /// Append: the window's rows are inserted.
    pub fn append(&self) -> String {
        let (cols, select) = self.lists(None);
        format!("INSERT INTO {t} ({cols}) SELECT {select} FROM {s}", t = self.target, s = self.staging)
    }

    /// Append with a key: only rows whose key the target does not hold yet, so a window
    /// that re-reads (the look-back catching late commits) inserts nothing twice.
    pub fn append_new(&self, key: &[String], prune: Option<&(String, String, String)>) -> String {
        let q = |c: &str| quote(&[c]);
        let (cols, select) = self.lists(Some("S"));
        let mut on: Vec<String> = key.iter().map(|k| format!("X.{0} = S.{0}", q(k))).collect();
        if let Some((col, lo, hi)) = prune {
            on.push(format!("(X.{c} BETWEEN {lo} AND {hi} OR X.{c} IS NULL)", c = q(col)));
        }
        format!(
            "INSERT INTO {t} ({cols}) SELECT {select} FROM {s} S WHERE NOT EXISTS (SELECT 1 FROM {t} X WHERE {})",
            on.join(" AND "),
            t = self.target,
            s = self.staging
        )
    }

    /// Merge by key: one row per key from staging (the newest cursor), which updates the
    /// target row unless the target already holds a newer version; soft-deleted rows are
    /// removed; new keys are inserted.
    pub fn merge(&self, m: &Merge) -> String {
        let q = |c: &str| quote(&[c]);
        let cursor = q(&m.cursor);
        let key_list: Vec<String> = m.key.iter().map(|k| q(k)).collect();
        let plain: Vec<String> = self.columns.iter().map(|c| q(c)).collect();
        let dedup = format!(
            "(SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {cursor} DESC) AS _aurora2bq_rn \
             FROM {s}) WHERE _aurora2bq_rn = 1)",
            cols = plain.join(", "),
            key = key_list.join(", "),
            s = self.staging,
        );
        let mut on: Vec<String> = m.key.iter().map(|k| format!("T.{0} = S.{0}", q(k))).collect();
        if let Some((col, lo, hi)) = &m.prune {
            on.push(format!("(T.{c} BETWEEN {lo} AND {hi} OR T.{c} IS NULL)", c = q(col)));
        }
        // A staging row is the row as the source holds it now; one whose cursor is NULL has
        // no order, and was re-read because it may have changed, so it wins too.
        let newer = format!("(T.{cursor} IS NULL OR S.{cursor} IS NULL OR S.{cursor} >= T.{cursor})");
        let deleted = match &m.soft_delete {
            Some((col, BqType::Bool)) => format!("S.{} = TRUE", q(col)),
            Some((col, _)) => format!("S.{} IS NOT NULL", q(col)),
            None => "FALSE".into(),
        };
        let (cols, select) = self.lists(Some("S"));
        let mut set: Vec<String> =
            self.columns.iter().filter(|c| !m.key.contains(c)).map(|c| format!("{0} = S.{0}", q(c))).collect();
        if let Some((at, run)) = self.metadata {
            set.push(format!("{} = TIMESTAMP_MICROS({at})", q(EXTRACTED_AT)));
            set.push(format!("{} = {}", q(RUN_ID), string_literal(run)));
        }
        let update = if set.is_empty() {
            String::new()
        } else {
            format!(" WHEN MATCHED AND {newer} THEN UPDATE SET {}", set.join(", "))
        };
        format!(
            "MERGE {t} T USING {dedup} S ON {on} \
             WHEN MATCHED AND {newer} AND {deleted} THEN DELETE{update} \
             WHEN NOT MATCHED AND NOT ({deleted}) THEN INSERT ({cols}) VALUES ({select})",
            t = self.target,
            on = on.join(" AND "),
        )
    }
}

pub struct Merge {
    pub key: Vec<String>,
    pub cursor: String,
    /// The soft-delete column and its type (BOOL means `= TRUE`, others `IS NOT NULL`).
    pub soft_delete: Option<(String, BqType)>,
    /// The target's partition column and the staging rows' range of it, as literals.
    pub prune: Option<(String, String, String)>,
}

/// A typed GoogleSQL literal for a value of `ty` given as text, for partition pruning.
pub fn literal(ty: BqType, text: &str) -> Option<String> {
    match ty {
        BqType::Int64 => text.parse::<i64>().ok().map(|n| n.to_string()),
        BqType::Date => Some(format!("DATE {}", string_literal(text))),
        BqType::Datetime => Some(format!("DATETIME {}", string_literal(text))),
        BqType::Timestamp => text.parse::<i64>().ok().map(|us| format!("TIMESTAMP_MICROS({us})")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_of_a_merge_table_leaves_soft_deleted_rows_out() {
        let cols = vec!["id".to_string(), "deleted_at".into(), "gone".into()];
        let load = Load { target: "`p.d.t`".into(), staging: "`p.d.s`".into(), columns: &cols, metadata: None };
        let ts = load.replace_live(Some(&("deleted_at".into(), BqType::Timestamp)));
        assert!(ts.ends_with("FROM `p.d.s` WHERE `deleted_at` IS NULL"), "{ts}");
        let b = load.replace_live(Some(&("gone".into(), BqType::Bool)));
        assert!(b.ends_with("WHERE `gone` IS NOT TRUE"), "{b}");
        assert!(load.replace().ends_with("FROM `p.d.s`"));
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(string_literal(r#"{"a":"it's \x"}"#), r#"'{"a":"it\'s \\x"}'"#);
    }

    #[test]
    fn merge_dedups_prefers_newer_and_applies_soft_deletes() {
        let cols = vec!["id".to_string(), "v".into(), "updated_at".into(), "deleted_at".into()];
        let load =
            Load { target: "`p.d.t`".into(), staging: "`p.d.s`".into(), columns: &cols, metadata: Some((5, "r1")) };
        let m = Merge {
            key: vec!["id".into()],
            cursor: "updated_at".into(),
            soft_delete: Some(("deleted_at".into(), BqType::Timestamp)),
            prune: Some(("created".into(), "DATE '2024-01-01'".into(), "DATE '2024-01-31'".into())),
        };
        let sql = load.merge(&m);
        assert!(sql.contains("ROW_NUMBER() OVER (PARTITION BY `id` ORDER BY `updated_at` DESC)"), "{sql}");
        assert!(sql.contains("ON T.`id` = S.`id` AND (T.`created` BETWEEN DATE '2024-01-01' AND DATE '2024-01-31' OR T.`created` IS NULL)"), "{sql}");
        assert!(sql.contains("WHEN MATCHED AND (T.`updated_at` IS NULL OR S.`updated_at` IS NULL OR S.`updated_at` >= T.`updated_at`) AND S.`deleted_at` IS NOT NULL THEN DELETE"), "{sql}");
        assert!(sql.contains("UPDATE SET `v` = S.`v`, `updated_at` = S.`updated_at`, `deleted_at` = S.`deleted_at`, `_aurora2bq_extracted_at` = TIMESTAMP_MICROS(5), `_aurora2bq_run_id` = 'r1'"), "{sql}");
        assert!(sql.contains("WHEN NOT MATCHED AND NOT (S.`deleted_at` IS NOT NULL) THEN INSERT"), "{sql}");
        assert!(!sql.contains("UPDATE SET `id`"), "keys are not updated: {sql}");
    }

    #[test]
    fn replace_and_append_carry_metadata() {
        let cols = vec!["id".to_string()];
        let load =
            Load { target: "`p.d.t`".into(), staging: "`p.d.s`".into(), columns: &cols, metadata: Some((7, "run")) };
        assert_eq!(
            load.append(),
            "INSERT INTO `p.d.t` (`id`, `_aurora2bq_extracted_at`, `_aurora2bq_run_id`) SELECT `id`, TIMESTAMP_MICROS(7), 'run' FROM `p.d.s`"
        );
        assert!(load.replace().starts_with("DELETE FROM `p.d.t` WHERE TRUE;\nINSERT INTO"));
    }

    #[test]
    fn append_with_a_key_inserts_only_new_keys() {
        let cols = vec!["id".to_string(), "v".to_string()];
        let load = Load { target: "`p.d.t`".into(), staging: "`p.d.s`".into(), columns: &cols, metadata: None };
        let prune = ("day".to_string(), "DATE '2024-01-01'".to_string(), "DATE '2024-01-02'".to_string());
        assert_eq!(
            load.append_new(&["id".into()], Some(&prune)),
            "INSERT INTO `p.d.t` (`id`, `v`) SELECT S.`id`, S.`v` FROM `p.d.s` S WHERE NOT EXISTS (SELECT 1 FROM \
             `p.d.t` X WHERE X.`id` = S.`id` AND (X.`day` BETWEEN DATE '2024-01-01' AND DATE '2024-01-02' OR X.`day` IS NULL))"
        );
    }
}
