//! A CSV record scanner tuned for what incident files are: long runs of lines with no
//! quotes at all. Such a line is split on commas in place (SIMD `memchr`, no copying);
//! a line holding a quote is handed to the `csv` crate, which handles quoted commas,
//! doubled quotes and quoted line breaks, and the scan resumes after that record. Both
//! paths give the same fields (`tests` below compares them on tricky input).

use memchr::memchr_iter;

use super::fields::strip_bom;

/// A record's fields, borrowed from the file or the scanner.
pub enum Row<'s> {
    Fast {
        line: &'s [u8],
        ranges: &'s [(usize, usize)],
    },
    Slow(&'s csv::ByteRecord),
}

impl<'s> Row<'s> {
    pub fn len(&self) -> usize {
        match self {
            Row::Fast { ranges, .. } => ranges.len(),
            Row::Slow(r) => r.len(),
        }
    }

    /// Field `i`, or empty past the end.
    #[inline]
    pub fn get(&self, i: usize) -> &'s [u8] {
        match self {
            Row::Fast { line, ranges } => ranges.get(i).map_or(&[][..], |&(a, b)| &line[a..b]),
            Row::Slow(r) => r.get(i).unwrap_or(&[]),
        }
    }

    /// The whole record's text, for reject reports.
    pub fn raw(&self) -> Vec<u8> {
        match self {
            Row::Fast { line, .. } => line.to_vec(),
            Row::Slow(r) => r.iter().collect::<Vec<_>>().join(&b','),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'s [u8]> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b',' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

/// Calls `f` with the index of each `,` `\n` `"` or `\r` in `hay`, in order, until `f`
/// returns false. On x86_64, 16 bytes at a time with SSE2 (part of the x86_64 baseline):
/// a comparison mask per block whose set bits are visited in order.
#[inline]
fn specials(hay: &[u8], mut f: impl FnMut(usize) -> bool) {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        while i + 16 <= hay.len() {
            // SAFETY: SSE2 is always available on x86_64, and the unaligned load reads the
            // 16 bytes hay[i..i + 16], which the loop condition keeps in bounds.
            let mut mask = unsafe {
                let v = _mm_loadu_si128(hay.as_ptr().add(i).cast::<__m128i>());
                let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
                let m = _mm_or_si128(
                    _mm_or_si128(eq(b','), eq(b'\n')),
                    _mm_or_si128(eq(b'"'), eq(b'\r')),
                );
                _mm_movemask_epi8(m) as u32
            };
            while mask != 0 {
                if !f(i + mask.trailing_zeros() as usize) {
                    return;
                }
                mask &= mask - 1;
            }
            i += 16;
        }
    }
    while i < hay.len() {
        if SPECIAL[hay[i] as usize] && !f(i) {
            return;
        }
        i += 1;
    }
}

/// Walks the records of a CSV buffer, tracking line numbers.
pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    line: u64,
    ranges: Vec<(usize, usize)>,
    slow: csv::ByteRecord,
}

impl<'a> Scanner<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Scanner {
            buf: strip_bom(buf),
            pos: 0,
            line: 1,
            ranges: Vec::with_capacity(16),
            slow: csv::ByteRecord::new(),
        }
    }

    /// The next non-empty record with the line it starts on.
    pub fn next_row(&mut self) -> Option<(u64, Row<'_>)> {
        loop {
            if self.pos >= self.buf.len() {
                return None;
            }
            let rest = &self.buf[self.pos..];
            let start_line = self.line;
            // One pass over the line for commas, its end, quotes and carriage returns.
            self.ranges.clear();
            let (mut a, mut end, mut odd) = (0, rest.len(), false);
            let mut cr: Option<usize> = None;
            specials(rest, |i| match rest[i] {
                b',' => {
                    self.ranges.push((a, i));
                    a = i + 1;
                    true
                }
                b'\n' => {
                    end = i;
                    false
                }
                b'\r' => {
                    cr = cr.or(Some(i));
                    true
                }
                _ => {
                    odd = true;
                    false
                }
            });
            let mut line_end = end;
            if line_end > 0 && rest[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            // A quote, or a lone '\r' (a record end for the csv crate, as in old Mac
            // files): let the csv crate decide.
            if odd || cr.is_some_and(|c| c < line_end) {
                return self.slow_row(start_line);
            }
            let next = (end + 1).min(rest.len());
            self.pos += next;
            self.line += 1;
            if line_end == 0 {
                continue;
            }
            // A '\r' before the newline can only sit in the last field.
            self.ranges.push((a.min(line_end), line_end));
            let line = &rest[..line_end];
            return Some((
                start_line,
                Row::Fast {
                    line,
                    ranges: &self.ranges,
                },
            ));
        }
    }

    fn slow_row(&mut self, start_line: u64) -> Option<(u64, Row<'_>)> {
        let rest = &self.buf[self.pos..];
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(rest);
        let consumed = match rdr.read_byte_record(&mut self.slow) {
            Ok(true) => (rdr.position().byte() as usize).clamp(1, rest.len()),
            // Cannot happen on a byte slice with flexible records; end the scan rather than loop.
            _ => {
                self.pos = self.buf.len();
                return None;
            }
        };
        self.line += memchr_iter(b'\n', &rest[..consumed]).count() as u64;
        self.pos += consumed;
        Some((start_line, Row::Slow(&self.slow)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut s = Scanner::new(input);
        let mut out = vec![];
        while let Some((line, row)) = s.next_row() {
            out.push((line, row.iter().map(<[u8]>::to_vec).collect()));
        }
        out
    }

    fn with_csv_crate(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(strip_bom(input));
        r.byte_records()
            .map(|rec| rec.unwrap().iter().map(<[u8]>::to_vec).collect())
            .collect()
    }

    #[test]
    fn agrees_with_the_csv_crate_and_counts_lines() {
        let input = b"\xEF\xBB\xBFa,b,c\r\n1,\"x, y\",3\r\n\r\n4,\"multi\nline\",6\n7,\"q\"\"uote\",9\nlast,no,newline";
        let got = all(input);
        let fields: Vec<Vec<Vec<u8>>> = got.iter().map(|g| g.1.clone()).collect();
        assert_eq!(fields, with_csv_crate(input));
        let lines: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(lines, vec![1, 2, 4, 6, 7]);
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_csv_crate_on_random_input(
            input in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', b',', b'"', b'\n', b'\r', b' ']), 0..240)
        ) {
            let got: Vec<Vec<Vec<u8>>> = all(&input).into_iter().map(|g| g.1).collect();
            proptest::prop_assert_eq!(got, with_csv_crate(&input));
        }
    }

    #[test]
    fn empty_and_ragged_input() {
        assert!(all(b"").is_empty());
        assert!(all(b"\n\n\r\n").is_empty());
        assert_eq!(all(b"a,b\nc\n")[1].1, vec![b"c".to_vec()]);
        let odd = b"a,\"unterminated\nb,c\n";
        let fields: Vec<Vec<Vec<u8>>> = all(odd).into_iter().map(|g| g.1).collect();
        assert_eq!(fields, with_csv_crate(odd));
    }
}
