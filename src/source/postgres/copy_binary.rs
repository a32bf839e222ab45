//! Splits PostgreSQL's binary COPY stream into tuples and fields, whatever the chunking.
//!
//! Format: an 11-byte signature, flags (i32), a header extension (i32 length + bytes); then
//! per tuple an i16 field count (−1 ends the stream) and per field an i32 length (−1 is
//! NULL) followed by that many bytes.

use std::ops::Range;

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// What one call to [`Framer::next_tuple`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole tuple; its fields are in the slice passed to `next_tuple`.
    Tuple { consumed: usize },
    /// More bytes are needed.
    Incomplete,
    /// The trailer: no more tuples.
    End { consumed: usize },
}

#[derive(Default)]
pub struct Framer {
    header_done: bool,
}

impl Framer {
    /// Parses the next tuple at the start of `data`. `fields` receives one range (into
    /// `data`) per field, `None` for NULL.
    pub fn next_tuple(
        &mut self,
        data: &[u8],
        ncols: usize,
        fields: &mut Vec<Option<Range<usize>>>,
    ) -> Result<Next, String> {
        let mut pos = 0;
        if !self.header_done {
            if data.len() < 19 {
                return Ok(Next::Incomplete);
            }
            if &data[..11] != SIGNATURE {
                return Err("COPY stream does not start with the binary signature".into());
            }
            let ext = i32::from_be_bytes(data[15..19].try_into().expect("4 bytes"));
            if ext < 0 {
                return Err("negative COPY header extension length".into());
            }
            let end = 19 + ext as usize;
            if data.len() < end {
                return Ok(Next::Incomplete);
            }
            pos = end;
        }
        let Some(count) = data.get(pos..pos + 2) else { return Ok(Next::Incomplete) };
        let count = i16::from_be_bytes([count[0], count[1]]);
        pos += 2;
        if count == -1 {
            self.header_done = true;
            return Ok(Next::End { consumed: pos });
        }
        if count as usize != ncols {
            return Err(format!("COPY tuple has {count} fields, expected {ncols}"));
        }
        fields.clear();
        for _ in 0..ncols {
            let Some(len) = data.get(pos..pos + 4) else { return Ok(Next::Incomplete) };
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            pos += 4;
            if len < 0 {
                fields.push(None);
                continue;
            }
            let end = pos + len as usize;
            if data.len() < end {
                return Ok(Next::Incomplete);
            }
            fields.push(Some(pos..end));
            pos = end;
        }
        self.header_done = true;
        Ok(Next::Tuple { consumed: pos })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(rows: &[Vec<Option<&[u8]>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend(0i32.to_be_bytes());
        out.extend(0i32.to_be_bytes());
        for r in rows {
            out.extend((r.len() as i16).to_be_bytes());
            for f in r {
                match f {
                    None => out.extend((-1i32).to_be_bytes()),
                    Some(b) => {
                        out.extend((b.len() as i32).to_be_bytes());
                        out.extend(*b);
                    }
                }
            }
        }
        out.extend((-1i16).to_be_bytes());
        out
    }

    /// Feeds the stream in pieces of every size and checks the same tuples come out.
    #[test]
    fn any_chunking_yields_the_same_tuples() {
        let rows = vec![vec![Some(&b"abc"[..]), None], vec![Some(&b""[..]), Some(&b"\x00\x01"[..])]];
        let data = stream(&rows);
        for chunk in 1..data.len() {
            let mut framer = Framer::default();
            let mut buf: Vec<u8> = Vec::new();
            let mut seen: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
            let mut ended = false;
            let mut fields = Vec::new();
            for piece in data.chunks(chunk) {
                buf.extend_from_slice(piece);
                loop {
                    match framer.next_tuple(&buf, 2, &mut fields).unwrap() {
                        Next::Tuple { consumed } => {
                            seen.push(fields.iter().map(|f| f.clone().map(|r| buf[r].to_vec())).collect());
                            buf.drain(..consumed);
                        }
                        Next::End { consumed } => {
                            buf.drain(..consumed);
                            ended = true;
                            break;
                        }
                        Next::Incomplete => break,
                    }
                }
            }
            assert!(ended && buf.is_empty(), "chunk {chunk}");
            let want: Vec<Vec<Option<Vec<u8>>>> =
                rows.iter().map(|r| r.iter().map(|f| f.map(|b| b.to_vec())).collect()).collect();
            assert_eq!(seen, want, "chunk {chunk}");
        }
    }

    #[test]
    fn wrong_field_count_is_an_error() {
        let data = stream(&[vec![Some(&b"x"[..])]]);
        let mut fields = Vec::new();
        assert!(Framer::default().next_tuple(&data, 3, &mut fields).is_err());
    }
}
