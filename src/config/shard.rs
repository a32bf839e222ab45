//! Which tables one shard of a run takes (`run --shard INDEX/COUNT`, or an Indexed Job's
//! `JOB_COMPLETION_INDEX` with `AURORA2BQ_SHARDS` / `run.shards`). A table belongs to the
//! shard its target name hashes to, so every shard agrees without talking to the others and
//! whatever list it sees: a table created between two shards' catalog reads is still taken
//! by exactly one shard (or by none that saw it), never by two. Each table is then loaded and
//! committed by that one shard in its own atomic transaction, as in an unsharded run.

/// One shard of a run: `index` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `INDEX/COUNT`, e.g. `0/4`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {s:?} is not INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse::<u32>().map_err(|_| bad())?, n.trim().parse::<u32>().map_err(|_| bad())?);
        Self::new(index, count).ok_or_else(bad)
    }

    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (count > 0 && index < count).then_some(Shard { index, count })
    }

    /// The shard of a run from `--shard`, else from an Indexed Job's index and the count
    /// (`AURORA2BQ_SHARDS`, else the config's `run.shards`); `None`: the run is not sharded.
    pub fn resolve(
        flag: Option<&str>,
        job_index: Option<&str>,
        env_count: Option<&str>,
        config_count: Option<u32>,
    ) -> Result<Option<Shard>, String> {
        if let Some(f) = flag {
            return Self::parse(f).map(Some);
        }
        let count = match env_count {
            Some(c) => Some(c.trim().parse::<u32>().ok().filter(|c| *c > 0).ok_or_else(|| {
                format!("AURORA2BQ_SHARDS {c:?} is not a positive number (the Indexed Job's completions)")
            })?),
            None => config_count,
        };
        match (job_index, count) {
            (_, None) | (None, Some(1)) => Ok(None),
            (Some(i), Some(n)) => {
                let index =
                    i.trim().parse::<u32>().map_err(|_| format!("JOB_COMPLETION_INDEX {i:?} is not a number"))?;
                Self::new(index, n).map(Some).ok_or_else(|| {
                    format!(
                        "JOB_COMPLETION_INDEX {index} is not below the shard count {n}: set AURORA2BQ_SHARDS (or \
                         run.shards) to the Indexed Job's completions"
                    )
                })
            }
            (None, Some(n)) => Err(format!(
                "the run is split in {n} shards (AURORA2BQ_SHARDS or run.shards) but this process is not told which \
                 it is: run it with --shard INDEX/{n}, or in an Indexed Job (JOB_COMPLETION_INDEX)"
            )),
        }
    }

    /// The chunks of a table split across the shards that this shard reads: chunk `i` goes
    /// to shard `(shard_of(target) + i) % count`, so the chunks of many split tables spread
    /// over all shards instead of each table's first chunk landing on shard 0.
    pub fn chunks_of(&self, target: &str, chunks: usize) -> Vec<usize> {
        let first = shard_of(target, self.count) as usize;
        (0..chunks).filter(|i| (first + i) % self.count as usize == self.index as usize).collect()
    }

    /// Whether the table with this target belongs to this shard.
    pub fn owns(&self, target: &str) -> bool {
        shard_of(target, self.count) == self.index
    }
}

/// FNV-1a of the target name: stable across versions, platforms and runs.
pub fn shard_of(target: &str, count: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in target.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_exactly_one_shard() {
        let targets: Vec<String> = (0..300).map(|i| format!("table_{i}")).collect();
        for count in [1, 2, 3, 8, 32] {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            let mut per = vec![0; count as usize];
            for t in &targets {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(t)).collect();
                assert_eq!(owners.len(), 1, "{t} in {count} shards");
                per[owners[0].index as usize] += 1;
            }
            // Spread: no shard gets more than twice its share of 300 tables.
            assert!(per.iter().all(|n| *n <= 2 * 300 / count as usize + 1), "{count}: {per:?}");
        }
    }

    #[test]
    fn shards_come_from_the_flag_or_the_indexed_job() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Shard::resolve(None, None, None, None), Ok(None));
        assert_eq!(Shard::resolve(None, Some("2"), Some("3"), None), Ok(Some(Shard { index: 2, count: 3 })));
        assert_eq!(Shard::resolve(None, Some("2"), None, Some(4)), Ok(Some(Shard { index: 2, count: 4 })));
        assert_eq!(Shard::resolve(Some("0/2"), Some("5"), Some("8"), None), Ok(Some(Shard { index: 0, count: 2 })));
        assert!(Shard::resolve(None, Some("3"), Some("3"), None).is_err());
        assert!(Shard::resolve(None, None, Some("3"), None).is_err());
        assert!(Shard::resolve(None, Some("0"), Some("x"), None).is_err());
        // An Indexed Job without a shard count is not a sharded run (e.g. completions = 1).
        assert_eq!(Shard::resolve(None, Some("0"), None, None), Ok(None));
    }
}
