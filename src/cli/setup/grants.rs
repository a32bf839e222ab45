//! `database.sql`: the database user that logs in with IAM tokens only, and SELECT on exactly
//! what the config reads, for the cluster's admin user to run.

use super::{File, Values};
use crate::config::{Engine, TableSource};

fn pg(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn my(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

pub(super) fn file(v: &Values) -> File {
    let user = &v.a.db_user;
    let mut sql = Vec::new();
    match v.config.source.engine {
        Engine::Postgres => {
            let db = v.a.database.clone().unwrap_or_default();
            sql.push(format!(
                "-- Run as the cluster's admin user, connected to database {db}:\n\
                 --   psql \"host={} port={} dbname={db} user=postgres sslmode=verify-full\" -f database.sql\n\
                 -- The user has no password: RDS lets it in with IAM tokens only (the rds_iam role).",
                v.host, v.port
            ));
            let u = pg(user);
            sql.push(format!("CREATE USER {u};\nGRANT rds_iam TO {u};\nGRANT CONNECT ON DATABASE {} TO {u};", pg(&db)));
            let mut schemas = std::collections::BTreeSet::new();
            let mut lines = Vec::new();
            for t in &v.config.tables {
                match &t.source {
                    TableSource::Table { schema, name } => {
                        let s = schema.clone().unwrap_or_else(|| "public".into());
                        lines.push(format!("GRANT SELECT ON {}.{} TO {u};", pg(&s), pg(name)));
                        schemas.insert(s);
                    }
                    TableSource::Pattern { schema, .. } => {
                        let s = schema.clone().unwrap_or_else(|| "public".into());
                        lines.push(format!(
                            "-- {}: every table of the schema, now and later\nGRANT SELECT ON ALL TABLES IN SCHEMA {} TO {u};\n\
                             ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {u};",
                            t.target,
                            pg(&s),
                            pg(&s)
                        ));
                        schemas.insert(s);
                    }
                    TableSource::Query(_) => {
                        lines.push(format!("-- {}: a query entry; GRANT SELECT on the tables it reads", t.target))
                    }
                }
            }
            sql.extend(schemas.iter().map(|s| format!("GRANT USAGE ON SCHEMA {} TO {u};", pg(s))));
            sql.extend(lines);
        }
        Engine::Mysql => {
            sql.push(format!(
                "-- Run as the cluster's admin user:\n--   mysql -h {} -P {} -u admin -p --ssl-mode=VERIFY_IDENTITY < database.sql\n\
                 -- The user has no password: Aurora lets it in with IAM tokens only.",
                v.host, v.port
            ));
            let u = format!("'{user}'@'%'");
            sql.push(format!(
                "CREATE USER {u} IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS';\nALTER USER {u} REQUIRE SSL;"
            ));
            let default_db = v.a.database.clone().unwrap_or_default();
            for t in &v.config.tables {
                match &t.source {
                    TableSource::Table { schema, name } => {
                        let s = schema.clone().unwrap_or_else(|| default_db.clone());
                        sql.push(format!("GRANT SELECT ON {}.{} TO {u};", my(&s), my(name)));
                        if t.parallel_chunks > 1 {
                            // Chunks start their snapshots together under a brief LOCK TABLES … READ.
                            sql.push(format!("GRANT LOCK TABLES ON {}.* TO {u};", my(&s)));
                        }
                    }
                    TableSource::Pattern { schema, .. } => {
                        let s = schema.clone().unwrap_or_else(|| default_db.clone());
                        sql.push(format!(
                            "-- {}: every table of the database\nGRANT SELECT ON {}.* TO {u};",
                            t.target,
                            my(&s)
                        ));
                    }
                    TableSource::Query(_) => {
                        sql.push(format!("-- {}: a query entry; GRANT SELECT on the tables it reads", t.target))
                    }
                }
            }
        }
    }
    File { path: "database.sql", text: sql.join("\n") + "\n" }
}
