//! BigQuery table resources and DDL from the mapped columns, and the comparison of a
//! source schema with an existing target.

use serde_json::{Value, json};

use crate::bq_model::{BqField, BqType};

/// `a`.`b` quoting for GoogleSQL identifiers.
pub fn quote(parts: &[&str]) -> String {
    format!("`{}`", parts.iter().map(|p| p.replace('`', "\\`")).collect::<Vec<_>>().join("."))
}

pub fn fields_json(fields: &[BqField]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| {
                json!({
                    "name": f.name,
                    "type": f.ty.rest_name(),
                    "mode": if f.repeated { "REPEATED" } else { "NULLABLE" },
                })
            })
            .collect(),
    )
}

/// A table resource for `tables.insert`.
pub fn table_resource(
    project: &str,
    dataset: &str,
    table: &str,
    fields: &[BqField],
    expiration_ms: Option<i64>,
    description: Option<&str>,
) -> Value {
    let mut v = json!({
        "tableReference": { "projectId": project, "datasetId": dataset, "tableId": table },
        "schema": { "fields": fields_json(fields) },
    });
    if let Some(ms) = expiration_ms {
        v["expirationTime"] = json!(ms.to_string());
    }
    if let Some(d) = description {
        v["description"] = json!(d);
    }
    v
}

/// The columns of an existing table resource: (name, type, repeated). Types this tool does
/// not write (RECORD, GEOGRAPHY, ...) come back as `None`.
pub fn existing_fields(resource: &Value) -> Vec<(String, Option<BqType>, bool)> {
    resource["schema"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default().to_owned(),
                f["type"].as_str().and_then(BqType::from_rest_name),
                f["mode"].as_str() == Some("REPEATED"),
            )
        })
        .collect()
}

/// How the target must change before this load's columns can go in.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    /// Source columns the target lacks: added before loading.
    pub added: Vec<BqField>,
    /// Target columns the source no longer has: kept, filled with NULL.
    pub missing_in_source: Vec<String>,
    /// Columns whose type differs: (name, target type, source type).
    pub changed: Vec<(String, String, String)>,
}

pub fn diff(target: &[(String, Option<BqType>, bool)], source: &[BqField]) -> SchemaDiff {
    let mut d = SchemaDiff::default();
    for f in source {
        match target.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(&f.name)) {
            None => d.added.push(f.clone()),
            Some((n, ty, rep)) if *ty != Some(f.ty) || *rep != f.repeated => {
                d.changed.push((n.clone(), type_label(*ty, *rep), type_label(Some(f.ty), f.repeated)))
            }
            Some(_) => {}
        }
    }
    for (n, _, _) in target {
        if !source.iter().any(|f| f.name.eq_ignore_ascii_case(n)) {
            d.missing_in_source.push(n.clone());
        }
    }
    d
}

fn type_label(ty: Option<BqType>, repeated: bool) -> String {
    let t = ty.map(BqType::rest_name).unwrap_or("another type");
    if repeated { format!("ARRAY<{t}>") } else { t.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, ty: BqType) -> BqField {
        BqField::scalar(name, ty)
    }

    #[test]
    fn diff_finds_added_missing_and_changed() {
        let target = vec![
            ("id".to_string(), Some(BqType::Int64), false),
            ("gone".to_string(), Some(BqType::String), false),
            ("amount".to_string(), Some(BqType::Numeric), false),
        ];
        let source = vec![f("id", BqType::Int64), f("amount", BqType::String), f("new", BqType::Date)];
        let d = diff(&target, &source);
        assert_eq!(d.added, vec![f("new", BqType::Date)]);
        assert_eq!(d.missing_in_source, vec!["gone".to_string()]);
        assert_eq!(d.changed, vec![("amount".into(), "NUMERIC".into(), "STRING".into())]);
    }

    #[test]
    fn staging_resources_carry_their_expiration() {
        let r = table_resource("p", "d", "t__stg", &[f("id", BqType::Int64)], Some(1_700_000_000_000), Some("x"));
        assert_eq!(r["expirationTime"], "1700000000000");
        assert_eq!(r["tableReference"]["tableId"], "t__stg");
        assert_eq!(r["schema"]["fields"][0], serde_json::json!({"name": "id", "type": "INT64", "mode": "NULLABLE"}));
        assert!(table_resource("p", "d", "t", &[], None, None).get("expirationTime").is_none());
    }

    #[test]
    fn column_names_follow_bigquery_rules() {
        use crate::bq_model::column_name_problem;
        assert!(column_name_problem("order_id").is_none());
        assert!(column_name_problem("_x1").is_none());
        assert!(column_name_problem("1abc").is_some());
        assert!(column_name_problem("order date").is_some());
        assert!(column_name_problem("_PARTITIONTIME").is_some());
        assert_eq!(quote(&["p", "d", "t`x"]), "`p.d.t\\`x`");
    }
}
