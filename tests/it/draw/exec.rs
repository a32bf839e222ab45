//! Runs one drawn case: a database and a dataset of its own, the rows, `aurora2bq run`
//! after each round of changes, the expected refusals with their fixes applied, and a
//! value-by-value comparison of target and source after every successful run.

use std::collections::BTreeMap;

use sqlx::Row;

use super::rng::Rng;
use super::types::{Cmp, Eng, canonical, menu, quote};
use super::{Case, CursorTy, Mode, needs_rename};
use crate::common::{self, MyDb, PgDb, bq::Bq, chain::Chain};

/// A collation for the `code` key column, and whether it holds values that differ in bytes
/// to be equal (so a merge on it must be refused unless `keys_as_bytes` is set).
pub struct Collation {
    pub ddl: &'static str,
    pub loose: bool,
}

pub fn collations(eng: Eng) -> &'static [Collation] {
    match eng {
        Eng::Pg => &[
            Collation { ddl: "", loose: false },
            Collation { ddl: "COLLATE \"C\"", loose: false },
            Collation { ddl: "COLLATE a2b_ci", loose: true },
            // Not a collation but a type: `code citext`.
            Collation { ddl: "citext", loose: true },
        ],
        Eng::My => &[
            Collation { ddl: "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", loose: true },
            Collation { ddl: "CHARACTER SET latin1 COLLATE latin1_swedish_ci", loose: true },
            Collation { ddl: "CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci", loose: true },
            Collation { ddl: "CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin", loose: false },
            Collation { ddl: "CHARACTER SET latin1 COLLATE latin1_bin", loose: true },
        ],
    }
}

use crate::common::AnyDb as Db;

async fn new_db(eng: Eng) -> Db {
    match eng {
        Eng::Pg => Db::Pg(PgDb::new().await),
        Eng::My => Db::My(MyDb::new().await),
    }
}

/// Every cell as text (the queries cast to text themselves).
async fn rows(db: &Db, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::Connection;
    match db {
        Db::Pg(d) => {
            let rows =
                sqlx::query(sql).fetch_all(&mut d.connect().await).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter().map(|r| (0..r.len()).map(|i| r.get::<Option<String>, _>(i)).collect()).collect()
        }
        Db::My(d) => {
            let mut c = sqlx::MySqlConnection::connect(&d.url).await.expect("connect");
            sqlx::query("SET time_zone = '+00:00'").execute(&mut c).await.expect("time zone");
            let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            let raw: Option<&[u8]> = r.try_get_unchecked(i).expect("cell");
                            raw.map(|b| String::from_utf8(b.to_vec()).expect("UTF-8 cell"))
                        })
                        .collect()
                })
                .collect()
        }
    }
}

/// The fixes applied so far, after the refusals that named them.
#[derive(Default)]
struct Fixes {
    rename: bool,
    keys_as_bytes: bool,
    key_on_id: bool,
}

/// What changes between runs: ids, the integer cursor, and whether NULL cursors may still
/// be written (append stops once its refusal was answered by filling them).
struct Writer {
    rng: Rng,
    next_id: u64,
    counter: u64,
    nulls: bool,
}

fn cursor_ddl(case: &Case) -> &'static str {
    match (case.eng, case.cursor) {
        (Eng::Pg, CursorTy::Instant) => "timestamptz",
        (Eng::Pg, CursorTy::Wall) => "timestamp",
        (Eng::My, CursorTy::Instant) => "timestamp(6)",
        (Eng::My, CursorTy::Wall) => "datetime(6)",
        (_, CursorTy::Int) => "bigint",
    }
}

pub fn ddl(case: &Case) -> String {
    let q = |n: &str| quote(case.eng, n);
    let mut cols = vec![format!("{} bigint PRIMARY KEY", q("id"))];
    if let Some(c) = case.code_key {
        let null = if case.code_nullable { "NULL" } else { "NOT NULL" };
        let ty = match collations(case.eng)[c].ddl {
            "citext" => "citext".to_string(),
            coll => format!("varchar(40) {coll}"),
        };
        cols.push(format!("{} {ty} {null} UNIQUE", q("code")));
    }
    let null = if case.cursor_nullable { "NULL" } else { "NOT NULL" };
    let default = match (case.eng, case.cursor, case.cursor_nullable) {
        (Eng::My, CursorTy::Instant, false) => " DEFAULT CURRENT_TIMESTAMP(6)",
        _ => "",
    };
    cols.push(format!("{} {} {null}{default}", q("updated_at"), cursor_ddl(case)));
    cols.push(format!("{} {} NULL", q("deleted_at"), if case.eng == Eng::Pg { "timestamptz" } else { "datetime(6)" }));
    for c in &case.cols {
        let ty = menu(case.eng)[c.ty].ddl;
        cols.push(format!("{} {ty}{}", q(&c.name), if c.nullable { "" } else { " NOT NULL" }));
    }
    let prelude = match case.eng {
        Eng::Pg => {
            "CREATE COLLATION IF NOT EXISTS a2b_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);\n\
                    CREATE EXTENSION IF NOT EXISTS citext;\n"
        }
        Eng::My => "",
    };
    format!("{prelude}CREATE TABLE t ({});", cols.join(", "))
}

fn target_name(i: usize, name: &str) -> String {
    if needs_rename(name) { format!("r_{i}") } else { name.to_owned() }
}

fn table_config(case: &Case, fixes: &Fixes) -> String {
    let source = if case.query { "query = \"SELECT * FROM t\"\ntarget = \"t\"" } else { "source = \"t\"" };
    let mut t = format!("\n[[tables]]\n{source}\nmode = \"{}\"\n", case.mode.name());
    if case.mode != Mode::FullRefresh {
        t.push_str("cursor = \"updated_at\"\n");
        if case.code_key.is_some() && !fixes.key_on_id {
            t.push_str("key = [\"code\"]\n");
        } else if case.query || fixes.key_on_id {
            // A query has no primary key: name it.
            t.push_str("key = [\"id\"]\n");
        }
    }
    if case.lookback > 0 {
        t.push_str(&format!("lookback = {}\n", case.lookback));
    }
    if case.soft_delete {
        t.push_str("soft_delete_column = \"deleted_at\"\n");
    }
    if fixes.keys_as_bytes {
        t.push_str("keys_as_bytes = true\n");
    }
    let renames: Vec<String> = case
        .cols
        .iter()
        .enumerate()
        .filter(|(_, c)| needs_rename(&c.name))
        .map(|(i, c)| format!("{:?} = {:?}", c.name, target_name(i, &c.name)))
        .collect();
    if fixes.rename && !renames.is_empty() {
        t.push_str(&format!("rename = {{ {} }}\n", renames.join(", ")));
    }
    t
}

/// The DDL and the final config of a case, to reproduce it by hand.
pub fn reproduction(case: &Case) -> String {
    let loose = case.mode == Mode::Merge && case.code_key.is_some_and(|c| collations(case.eng)[c].loose);
    let fixes = Fixes { rename: true, keys_as_bytes: loose, key_on_id: false };
    format!("-- source DDL\n{}\n# aurora2bq table config (fixes applied)\n{}", ddl(case), table_config(case, &fixes))
}

impl Writer {
    fn cursor_value(&mut self, case: &Case) -> String {
        if self.nulls && case.cursor_nullable && self.rng.chance(0.25) {
            return "NULL".into();
        }
        match (case.eng, case.cursor) {
            (Eng::Pg, CursorTy::Instant) => "now()".into(),
            (Eng::Pg, CursorTy::Wall) => "localtimestamp".into(),
            (Eng::My, _) if case.cursor != CursorTy::Int => "NOW(6)".into(),
            // Shared by a statement's rows: ties on the cursor, broken by the key.
            _ => self.counter.to_string(),
        }
    }

    fn value(&mut self, case: &Case, i: usize) -> String {
        let c = &case.cols[i];
        if c.nullable && self.rng.chance(0.2) { "NULL".into() } else { (menu(case.eng)[c.ty].make)(&mut self.rng) }
    }

    fn inserts(&mut self, case: &Case, n: usize) -> String {
        self.counter += 1;
        let mut rows = Vec::new();
        for _ in 0..n {
            let id = self.next_id;
            self.next_id += 1;
            let mut v = vec![id.to_string()];
            if case.code_key.is_some() {
                let word = ["abc", "ABC", "Abc", "e", "E"][self.rng.below(5)];
                let null = case.code_nullable && self.rng.chance(0.2);
                v.push(if null { "NULL".into() } else { format!("'{word}-{id:06}'") });
            }
            v.push(self.cursor_value(case));
            v.push("NULL".into());
            for i in 0..case.cols.len() {
                v.push(self.value(case, i));
            }
            rows.push(format!("({})", v.join(", ")));
        }
        if rows.is_empty() { String::new() } else { format!("INSERT INTO t VALUES {};", rows.join(", ")) }
    }

    /// One round of changes the mode can carry: inserts always; updates, soft and hard
    /// deletes where the mode reads them.
    fn round(&mut self, case: &Case) -> String {
        let n = 1 + self.rng.below(20);
        let mut sql = self.inserts(case, n);
        if case.mode == Mode::Append || self.next_id <= 1 {
            return sql;
        }
        let q = |n: &str| quote(case.eng, n);
        for _ in 0..self.rng.below(8) {
            let id = 1 + self.rng.below((self.next_id - 1) as usize);
            let mut set = vec![format!("{} = {}", q("updated_at"), self.cursor_value(case))];
            for i in 0..case.cols.len() {
                if self.rng.chance(0.5) {
                    set.push(format!("{} = {}", q(&case.cols[i].name), self.value(case, i)));
                }
            }
            sql.push_str(&format!(" UPDATE t SET {} WHERE id = {id};", set.join(", ")));
        }
        let now = if case.eng == Eng::Pg { "now()" } else { "NOW(6)" };
        for _ in 0..self.rng.below(4) {
            let id = 1 + self.rng.below((self.next_id - 1) as usize);
            match case.mode {
                Mode::FullRefresh => sql.push_str(&format!(" DELETE FROM t WHERE id = {id};")),
                Mode::Merge if case.soft_delete => {
                    let cursor = self.cursor_value(case);
                    sql.push_str(&format!(
                        " UPDATE t SET {} = {now}, {} = {cursor} WHERE id = {id};",
                        q("deleted_at"),
                        q("updated_at")
                    ))
                }
                _ => {}
            }
        }
        self.counter += 1;
        sql
    }
}

pub async fn execute(chain: &Chain, case: &Case) -> Result<(), String> {
    let db = new_db(case.eng).await;
    db.exec(&ddl(case)).await;
    let bq = Bq::new();
    let dataset = bq.create_dataset().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut w = Writer { rng: Rng::new(case.seed ^ 0x5eed), next_id: 1, counter: 1, nulls: true };
    let mut fixes = Fixes::default();
    let first = w.inserts(case, case.rows);
    db.exec(&first).await;
    run_and_compare(chain, case, &db, &dataset, dir.path(), &mut fixes, &mut w)
        .await
        .map_err(|e| format!("first run: {e}"))?;
    for round in 0..case.rounds {
        let sql = w.round(case);
        db.exec(&sql).await;
        run_and_compare(chain, case, &db, &dataset, dir.path(), &mut fixes, &mut w)
            .await
            .map_err(|e| format!("run after round {} ({sql}): {e}", round + 1))?;
    }
    Ok(())
}

async fn run_and_compare(
    chain: &Chain,
    case: &Case,
    db: &Db,
    dataset: &str,
    dir: &std::path::Path,
    fixes: &mut Fixes,
    w: &mut Writer,
) -> Result<(), String> {
    let odd = case.cols.iter().any(|c| needs_rename(&c.name));
    for _ in 0..5 {
        let keyed_on_code = case.mode != Mode::FullRefresh && case.code_key.is_some() && !fixes.key_on_id;
        let loose_key =
            keyed_on_code && case.mode == Mode::Merge && case.code_key.is_some_and(|c| collations(case.eng)[c].loose);
        let null_codes = keyed_on_code && !rows(db, "SELECT 'x' FROM t WHERE code IS NULL").await.is_empty();
        let null_cursors =
            case.mode == Mode::Append && !rows(db, "SELECT 'x' FROM t WHERE updated_at IS NULL").await.is_empty();
        let config = common::write_config(dir, chain, dataset, &[], &table_config(case, fixes));
        if case.eng == Eng::My {
            let text = std::fs::read_to_string(&config).unwrap().replace("engine = \"postgres\"", "engine = \"mysql\"");
            std::fs::write(&config, text).unwrap();
        }
        let run =
            common::aurora2bq(&["run", "--config", config.to_str().unwrap()], &[("TEST_SOURCE_URL", db.url())]).await;
        let out = format!("{}\n{}", run.stdout, run.stderr);
        if run.code == Some(0) {
            // A run that should have been refused and was not is a defect too.
            if odd && !fixes.rename {
                return Err(format!("a column BigQuery cannot take as named was loaded without a rename:\n{out}"));
            }
            if loose_key && !fixes.keys_as_bytes {
                return Err(format!("a merge on a case-insensitive key was not refused:\n{out}"));
            }
            if null_cursors {
                return Err(format!("an append with NULL cursors was not refused:\n{out}"));
            }
            return compare(case, db, dataset).await;
        }
        eprintln!(
            "seed {}: refused, {}",
            case.seed,
            out.lines().find(|l| l.contains("fix:")).unwrap_or("(no fix line)").trim()
        );
        if odd && !fixes.rename && out.contains("rename = {") {
            fixes.rename = true;
        } else if loose_key && !fixes.keys_as_bytes && out.contains("keys_as_bytes = true") {
            fixes.keys_as_bytes = true;
        } else if null_codes && out.contains("hold NULL in rows of this window") {
            // The fix the refusal names: key on NOT NULL columns that identify a row.
            fixes.key_on_id = true;
        } else if null_cursors && out.contains("fill the NULLs") {
            // The fix the refusal names: fill them (and write no more).
            w.nulls = false;
            let value = w.cursor_value(case);
            db.exec(&format!("UPDATE t SET updated_at = {value} WHERE updated_at IS NULL;")).await;
        } else {
            return Err(format!("the run failed without an expected refusal (exit {:?}):\n{out}", run.code));
        }
    }
    Err("still refused after every fix was applied".into())
}

/// The target against the source's live rows, value by value, keyed by id.
async fn compare(case: &Case, db: &Db, dataset: &str) -> Result<(), String> {
    let q = |n: &str| quote(case.eng, n);
    let (mut src_cols, mut bq_cols, mut cmps) = (Vec::new(), Vec::new(), Vec::new());
    let text = |e: &str| if case.eng == Eng::Pg { format!("{e}::text") } else { format!("CONVERT({e} USING utf8mb4)") };
    src_cols.push(if case.eng == Eng::Pg { "id::text".to_string() } else { "CAST(id AS CHAR)".into() });
    bq_cols.push("id".to_string());
    cmps.push(Cmp::Exact);
    if case.code_key.is_some() {
        src_cols.push(text(&q("code")));
        bq_cols.push("code".into());
        cmps.push(Cmp::Exact);
    }
    let (cursor_canon, cursor_cmp) = match (case.eng, case.cursor) {
        (_, CursorTy::Int) => (if case.eng == Eng::Pg { "{}::text" } else { "CAST({} AS CHAR)" }, Cmp::Exact),
        (Eng::Pg, CursorTy::Instant) => ("(extract(epoch from {}) * 1000000)::int8::text", Cmp::Exact),
        (Eng::Pg, CursorTy::Wall) => ("to_char({}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')", Cmp::Datetime),
        (Eng::My, CursorTy::Instant) => ("CAST(CAST(UNIX_TIMESTAMP({}) * 1000000 AS SIGNED) AS CHAR)", Cmp::Exact),
        (Eng::My, CursorTy::Wall) => ("DATE_FORMAT({}, '%Y-%m-%dT%H:%i:%s.%f')", Cmp::Datetime),
    };
    src_cols.push(cursor_canon.replace("{}", &q("updated_at")));
    bq_cols.push("updated_at".into());
    cmps.push(cursor_cmp);
    for (i, c) in case.cols.iter().enumerate() {
        let ty = &menu(case.eng)[c.ty];
        src_cols.push(ty.canon.replace("{0}", &q(&c.name)).replace("{}", &q(&c.name)));
        bq_cols.push(format!("`{}`", target_name(i, &c.name)));
        cmps.push(ty.cmp);
    }
    let filter = if case.soft_delete { " WHERE deleted_at IS NULL" } else { "" };
    let source = rows(db, &format!("SELECT {} FROM t{filter}", src_cols.join(", "))).await;
    let target = Bq::new().query(&format!("SELECT {} FROM {dataset}.t", bq_cols.join(", "))).await;
    let mut want = BTreeMap::new();
    for r in source {
        let cells: Vec<Option<String>> =
            r.iter().zip(&cmps).map(|(v, cmp)| v.as_deref().map(|v| canonical(*cmp, v, false))).collect();
        want.insert(cells[0].clone().unwrap_or_default(), cells);
    }
    let mut got = BTreeMap::new();
    for r in target {
        let cells: Vec<Option<String>> =
            r.iter().zip(&cmps).map(|(v, cmp)| v.as_str().map(|v| canonical(*cmp, v, true))).collect();
        let id = cells[0].clone().unwrap_or_default();
        if got.insert(id.clone(), cells).is_some() {
            return Err(format!("id {id} is in the target twice"));
        }
    }
    let mut problems = Vec::new();
    for (id, row) in &want {
        match got.get(id) {
            None => problems.push(format!("id {id}: missing in BigQuery")),
            Some(g) => {
                for (j, name) in bq_cols.iter().enumerate() {
                    if row[j] != g[j] {
                        problems.push(format!("id {id}, {name}: source {:?}, BigQuery {:?}", row[j], g[j]));
                    }
                }
            }
        }
    }
    problems.extend(
        got.keys().filter(|k| !want.contains_key(*k)).map(|k| format!("id {k}: in BigQuery, not in the source")),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} differences:\n{}",
            problems.len(),
            problems.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
        ))
    }
}
