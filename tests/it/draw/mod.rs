//! The generative differential test: it draws a table (column types, nullability, odd
//! names, key and cursor shapes, collations and character sets, load mode) and rows, loads
//! them with `aurora2bq run` into bqemulator, changes the source between incremental runs
//! (inserts, updates, NULL cursors, soft deletes, hard deletes where the mode allows), and
//! compares the target with the source value by value after every run. Refusals the draw
//! makes expected (a name BigQuery refuses, a case-insensitive merge key, NULL cursors in
//! append) must come with their fix, which is then applied. A failing draw is shrunk and
//! printed with its seed.

pub mod exec;
pub mod rng;
pub mod types;

use rng::Rng;
use types::{Eng, menu};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    FullRefresh,
    Append,
    Merge,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::FullRefresh => "full_refresh",
            Mode::Append => "append",
            Mode::Merge => "merge",
        }
    }
}

/// The cursor column's type: an instant, a wall-clock time, or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorTy {
    Instant,
    Wall,
    Int,
}

#[derive(Debug, Clone)]
pub struct Col {
    pub name: String,
    /// Index into the engine's type menu.
    pub ty: usize,
    pub nullable: bool,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub eng: Eng,
    pub mode: Mode,
    pub cursor: CursorTy,
    pub cursor_nullable: bool,
    /// `Some(i)`: the table has a unique text column `code` in collation `i`
    /// ([`exec::collations`]), and the window is keyed on it.
    pub code_key: Option<usize>,
    /// `code` may be NULL: a window keyed on it must be refused, and `key = ["id"]` fixes it.
    pub code_nullable: bool,
    /// Read through `query = "SELECT * FROM t"` instead of the table: same planning.
    pub query: bool,
    pub soft_delete: bool,
    pub lookback: i64,
    pub cols: Vec<Col>,
    pub rows: usize,
    pub rounds: usize,
}

/// Names BigQuery refuses or takes for another; each must be refused with a `rename` fix.
fn odd_names(eng: Eng) -> &'static [&'static str] {
    match eng {
        // MySQL column names ignore case, so only PostgreSQL can hold a case-only pair.
        Eng::Pg => &["Order Date", "1st", "_PARTITIONTIME", "_CHANGE_TYPE", "ünï", "_aurora2bq_run_id", "Val"],
        Eng::My => &["Order Date", "1st", "_PARTITIONTIME", "_CHANGE_TYPE", "ünï", "_aurora2bq_run_id", "_TABLE_x"],
    }
}

/// Whether `name` needs a rename in BigQuery: not letters, digits and underscores, a
/// reserved prefix, or `val`, the case-only twin of `Val`.
pub fn needs_rename(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
        || ["_partition", "_change_", "_aurora2bq_", "_table_"].iter().any(|p| lower.starts_with(p))
        || name == "val"
}

impl Case {
    pub fn draw(seed: u64, eng: Eng) -> Case {
        let mut r = Rng::new(seed);
        let mode = [Mode::FullRefresh, Mode::Append, Mode::Merge, Mode::Merge][r.below(4)];
        let n = 1 + r.below(6);
        let mut cols = Vec::new();
        for i in 0..n {
            let name =
                if r.chance(0.2) { odd_names(eng)[r.below(odd_names(eng).len())].to_string() } else { format!("c{i}") };
            if cols.iter().any(|c: &Col| c.name.eq_ignore_ascii_case(&name) && (eng == Eng::My || c.name == name)) {
                continue;
            }
            cols.push(Col { name, ty: r.below(menu(eng).len()), nullable: r.chance(0.6) });
        }
        // A case-only pair, where the engine allows one.
        if cols.iter().any(|c| c.name == "Val") {
            cols.push(Col { name: "val".into(), ty: 0, nullable: true });
        }
        let query = r.chance(0.25);
        Case {
            seed,
            eng,
            mode,
            cursor: [CursorTy::Instant, CursorTy::Wall, CursorTy::Int][r.below(3)],
            cursor_nullable: r.chance(0.3),
            code_key: r.chance(0.4).then(|| r.below(exec::collations(eng).len())),
            code_nullable: r.chance(0.25),
            query,
            soft_delete: mode == Mode::Merge && r.chance(0.6),
            lookback: if mode == Mode::Merge && r.chance(0.5) { 30 } else { 0 },
            cols,
            rows: 1 + r.below(60),
            rounds: 1 + r.below(3),
        }
    }

    /// Smaller cases that may still fail the same way: one column fewer, fewer rows or rounds.
    pub fn shrinks(&self) -> Vec<Case> {
        let mut out = Vec::new();
        for i in 0..self.cols.len() {
            let mut c = self.clone();
            c.cols.remove(i);
            out.push(c);
        }
        if self.rows > 1 {
            out.push(Case { rows: self.rows / 2, ..self.clone() });
        }
        if self.rounds > 0 {
            out.push(Case { rounds: self.rounds - 1, ..self.clone() });
        }
        if self.code_key.is_some() {
            out.push(Case { code_key: None, ..self.clone() });
        }
        if self.query {
            out.push(Case { query: false, ..self.clone() });
        }
        out
    }
}

/// How many draws and from which seed: `AURORA2BQ_GEN_DRAWS` and `AURORA2BQ_GEN_SEED`
/// (CI uses the fixed defaults; `scripts/fuzz` draws more from a random seed).
pub fn budget(default_seed: u64) -> (u64, usize) {
    let seed = std::env::var("AURORA2BQ_GEN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default_seed);
    let draws = std::env::var("AURORA2BQ_GEN_DRAWS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    (seed, draws)
}

/// Runs `draws` cases from `seed` on `eng`; the first failure is shrunk and reported.
pub async fn run_budget(eng: Eng, default_seed: u64) {
    let (seed, draws) = budget(default_seed);
    let chain = crate::common::chain::Chain::start(crate::common::chain::good_project()).await;
    for i in 0..draws as u64 {
        let case = Case::draw(seed + i, eng);
        if let Err(first) = exec::execute(&chain, &case).await {
            let (small, why) = shrink(&chain, case.clone(), first).await;
            panic!(
                "generative draw failed: seed {} ({eng:?}).\nReproduce with: AURORA2BQ_GEN_SEED={} AURORA2BQ_GEN_DRAWS=1 \
                 scripts/test --test generative\nShrunk case:\n{small:#?}\n{}\nFailure:\n{why}",
                case.seed,
                case.seed,
                exec::reproduction(&small)
            );
        }
    }
}

async fn shrink(chain: &crate::common::chain::Chain, mut case: Case, mut why: String) -> (Case, String) {
    let mut tries = 0;
    'outer: while tries < 16 {
        for smaller in case.shrinks() {
            tries += 1;
            if let Err(e) = exec::execute(chain, &smaller).await {
                case = smaller;
                why = e;
                continue 'outer;
            }
            if tries >= 16 {
                break 'outer;
            }
        }
        break;
    }
    (case, why)
}
