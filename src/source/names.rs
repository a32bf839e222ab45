//! What the source's columns are called in BigQuery, and whether BigQuery can tell their
//! keys apart the way the source does. Both are settled before anything is written: a name
//! BigQuery refuses, two names it takes for one, or a merge key it would compare
//! differently from the source, stop the table with the `rename` or `key` that fixes it.

use std::collections::{HashMap, HashSet};

use super::{SourceError, TableSchema};
use crate::bq_model::column_name_problem;
use crate::config::TableConfig;

/// A valid name close to `name`, for the fix.
fn suggest(name: &str, taken: &HashSet<String>) -> String {
    let mut s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) || column_name_problem(&s).is_some() {
        s = format!("c_{}", s.trim_start_matches('_'));
    }
    s.truncate(280);
    let mut out = s.clone();
    let mut n = 2;
    while taken.contains(&out) {
        out = format!("{s}_{n}");
        n += 1;
    }
    out
}

/// Applies the table's `rename` to the schema's BigQuery names, then checks them: each
/// valid, and no two the same to BigQuery (column names are case-insensitive there).
pub fn apply_target_names(table: &TableConfig, schema: &mut TableSchema) -> Result<(), SourceError> {
    let label = schema.display_name.clone();
    if let Some(missing) = table.rename.keys().find(|k| !schema.columns.iter().any(|c| &c.name == *k)) {
        return Err(SourceError::Config {
            table: label,
            detail: format!("`rename` names column {missing:?}, which is not among the copied columns"),
        });
    }
    if let Some(sd) = table.soft_delete_column.as_ref().filter(|sd| !schema.columns.iter().any(|c| &c.name == *sd)) {
        return Err(SourceError::Config {
            table: label,
            detail: format!(
                "soft_delete_column {sd:?} is not among the copied columns ({}); name a column the table has",
                schema.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    for c in &mut schema.columns {
        if let Some(to) = table.rename.get(&c.name) {
            c.field.name = to.clone();
        }
    }
    // Partitioning and clustering name BigQuery columns; a wrong one would only fail when
    // the target is created, after every row was staged.
    let opts = &table.target_options;
    let named = opts
        .partition
        .iter()
        .map(|p| ("partition", p.column()))
        .chain(opts.cluster_by.iter().map(|c| ("cluster_by", c.as_str())));
    for (key, col) in named {
        if !schema.columns.iter().any(|c| c.field.name == col) {
            return Err(SourceError::Config {
                table: label,
                detail: format!(
                    "{key} names column {col:?}, which the target will not have (its columns: {}); name one of them, \
                     by its BigQuery name",
                    schema.columns.iter().map(|c| c.field.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    let seen: HashSet<String> = schema.columns.iter().map(|c| c.field.name.to_ascii_lowercase()).collect();
    let mut first: HashMap<String, &str> = HashMap::new();
    for c in &schema.columns {
        let target = &c.field.name;
        if let Some(why) = column_name_problem(target) {
            return Err(refuse_name(
                &label,
                &c.name,
                format!("BigQuery cannot take the name {target:?}: {why}"),
                &seen,
            ));
        }
        if let Some(other) = first.insert(target.to_ascii_lowercase(), &c.name) {
            if other == c.name {
                // Only a query can name two columns alike, and a rename cannot tell them apart.
                return Err(SourceError::Refused {
                    table: label,
                    problem: format!("the query returns two columns named {other:?}"),
                    fix: format!("give them different names in the query: `... AS {}`", suggest(other, &seen)),
                });
            }
            return Err(refuse_name(
                &label,
                &c.name,
                format!("columns {other:?} and {:?} are one column to BigQuery, whose names ignore case", c.name),
                &seen,
            ));
        }
    }
    Ok(())
}

fn refuse_name(table: &str, column: &str, problem: String, taken: &HashSet<String>) -> SourceError {
    let to = suggest(column, taken);
    SourceError::Refused {
        table: table.to_owned(),
        problem,
        fix: format!("give it another name under this table: `rename = {{ {column:?} = {to:?} }}`"),
    }
}

/// A merge matches keys in BigQuery byte for byte; a source that holds `abc` and `ABC` to be
/// one key would then get a second row when a key's case changes. Refused unless the table
/// declares `keys_as_bytes`. `loose(column)` says why equal values of a column may differ in
/// bytes (its collation, `citext`), if they may.
pub fn check_merge_keys(
    table: &TableConfig,
    label: &str,
    keys: &[String],
    loose: impl Fn(&str) -> Option<String>,
) -> Result<(), SourceError> {
    if table.mode != crate::config::LoadMode::Merge || table.keys_as_bytes {
        return Ok(());
    }
    let Some((name, why)) = keys.iter().find_map(|k| loose(k).map(|why| (k, why))) else { return Ok(()) };
    Err(SourceError::Refused {
        table: label.to_owned(),
        problem: format!(
            "merge key column {name:?} compares by {why}, so the source holds values such as 'abc' and 'ABC' (or 'e' \
             and 'é', or 'a' and 'a ') to be the same key, but BigQuery's MERGE compares bytes: a key whose case \
             or accents change would leave two rows in the target"
        ),
        fix: "merge on columns that compare byte for byte, e.g. a numeric id: `key = [\"id\"]`; or, if keys in \
              this table never differ only in case, accents or trailing spaces, say so with `keys_as_bytes = true`"
            .into(),
    })
}

/// Whether a MySQL collation compares values as their bytes: `binary`, or a `_bin`
/// collation without PAD SPACE (`utf8mb4_0900_bin`, MariaDB's `*_nopad_bin`). CHAR values
/// arrive without trailing spaces, so PAD SPACE does not matter for them.
pub fn mysql_collation_is_bytewise(collation: &str, data_type: &str) -> bool {
    let c = collation.to_ascii_lowercase();
    if c == "binary" {
        return true;
    }
    c.ends_with("_bin") && (c.contains("nopad") || c.contains("0900_bin") || data_type == "char")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_valid_and_unique() {
        let taken = HashSet::from(["order_date".to_string()]);
        for name in ["Order Date", "1st", "_TABLE_x", "é"] {
            let s = suggest(name, &taken);
            assert_eq!(column_name_problem(&s), None, "{name} -> {s}");
            assert!(!taken.contains(&s), "{s}");
        }
    }

    #[test]
    fn mysql_bytewise_collations() {
        assert!(mysql_collation_is_bytewise("binary", "varbinary"));
        assert!(mysql_collation_is_bytewise("utf8mb4_0900_bin", "varchar"));
        assert!(mysql_collation_is_bytewise("utf8mb4_nopad_bin", "varchar"));
        assert!(mysql_collation_is_bytewise("latin1_bin", "char"));
        assert!(!mysql_collation_is_bytewise("latin1_bin", "varchar"), "PAD SPACE");
        assert!(!mysql_collation_is_bytewise("utf8mb4_general_ci", "varchar"));
        assert!(!mysql_collation_is_bytewise("utf8mb4_0900_as_cs", "varchar"));
    }
}
