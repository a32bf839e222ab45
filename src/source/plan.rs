//! What both engines do with the catalog's columns: check that the config names only
//! columns the table has, then plan each selected column or say why it cannot be copied.

use super::SourceError;
use crate::config::{Cast, TableConfig};

/// Why one column cannot be planned.
#[derive(Debug, PartialEq, Eq)]
pub enum PlanError {
    /// No mapping for the type: exclude or cast the column.
    Unsupported,
    /// The config asks for something that does not apply.
    Invalid(String),
}

/// A catalog column, as far as planning needs to know it.
pub trait CatalogColumn {
    fn name(&self) -> &str;
    fn declared(&self) -> &str;
}

pub fn plan_columns<C: CatalogColumn, P>(
    table: &TableConfig,
    display_name: &str,
    columns: &[C],
    plan: impl Fn(&C, Option<Cast>) -> Result<P, PlanError>,
) -> Result<Vec<P>, SourceError> {
    let known = |c: &String| columns.iter().any(|k| k.name() == c);
    let listed = table.columns.iter().flatten().chain(&table.exclude_columns).chain(table.casts.keys());
    if let Some(missing) = listed.into_iter().find(|c| !known(c)) {
        let all: Vec<&str> = columns.iter().map(|c| c.name()).collect();
        return Err(SourceError::Config {
            table: display_name.to_owned(),
            detail: format!(
                "the config names column {missing:?}, which it does not have (columns: {})",
                all.join(", ")
            ),
        });
    }
    let mut plans = Vec::new();
    for c in columns.iter().filter(|c| table.includes(c.name())) {
        match plan(c, table.casts.get(c.name()).copied()) {
            Ok(p) => plans.push(p),
            Err(PlanError::Unsupported) => {
                return Err(SourceError::Unsupported {
                    table: display_name.to_owned(),
                    column: c.name().to_owned(),
                    ty: c.declared().to_owned(),
                });
            }
            Err(PlanError::Invalid(detail)) => {
                return Err(SourceError::Config {
                    table: display_name.to_owned(),
                    detail: format!("column {}: {detail}", c.name()),
                });
            }
        }
    }
    if plans.is_empty() {
        return Err(SourceError::Config { table: display_name.to_owned(), detail: "no columns left to copy".into() });
    }
    Ok(plans)
}
