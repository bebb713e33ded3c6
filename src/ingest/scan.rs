//! A CSV record scanner tuned for what incident files are: long runs of lines with no
//! quotes at all. Such a line is split on commas in place (32 bytes at a time with AVX2
//! where the CPU has it, else 16 with SSE2; no copying);
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

/// How a line's scan ended.
enum Line {
    /// A plain line: its text ends at `end` (without the `\r` of a CRLF), and the next
    /// line starts at `next`. `ranges` holds its fields.
    Plain { end: usize, next: usize },
    /// The line holds a quote or a lone `\r`: the csv crate must read it.
    Slow,
}

/// Ends a line at the first byte of `rest` that is not a comma or plain text (`p`), or
/// at the end of the buffer (`p == rest.len()`); `a` is the last field's start.
#[inline(always)]
fn end_line(rest: &[u8], p: usize, a: usize, ranges: &mut Vec<(usize, usize)>) -> Line {
    let (end, next) = match rest.get(p) {
        None => (p, p),
        Some(b'\n') => (p, p + 1),
        Some(b'\r') if rest.get(p + 1) == Some(&b'\n') => (p, p + 2),
        // A quote, or a '\r' not followed by '\n' (a record end for the csv crate, as in
        // old Mac files).
        Some(_) => return Line::Slow,
    };
    ranges.push((a, end));
    Line::Plain { end, next }
}

/// Splits the line at the start of `rest` on commas, `W` bytes at a time: `masks(i)`
/// gives the bits of the commas and of the other special bytes (`\n`, `\r`, `"`) among
/// `rest[i..i + W]`. Commas are pushed until the first other special byte, which ends
/// the line (or sends it to the csv crate).
#[inline(always)]
fn split_line<const W: usize>(
    rest: &[u8],
    ranges: &mut Vec<(usize, usize)>,
    masks: impl Fn(usize) -> (u64, u64),
) -> Line {
    let mut a = 0;
    let mut i = 0;
    let mut push = |mut commas: u64, i: usize, a: &mut usize| {
        while commas != 0 {
            let j = i + commas.trailing_zeros() as usize;
            ranges.push((*a, j));
            *a = j + 1;
            commas &= commas - 1;
        }
    };
    while i + W <= rest.len() {
        let (commas, others) = masks(i);
        if others != 0 {
            let p = others.trailing_zeros();
            push(commas & ((1u64 << p) - 1), i, &mut a);
            return end_line(rest, i + p as usize, a, ranges);
        }
        push(commas, i, &mut a);
        i += W;
    }
    while i < rest.len() {
        match rest[i] {
            b',' => {
                ranges.push((a, i));
                a = i + 1;
            }
            b'\n' | b'\r' | b'"' => return end_line(rest, i, a, ranges),
            _ => {}
        }
        i += 1;
    }
    end_line(rest, rest.len(), a, ranges)
}

/// [`split_line`] 16 bytes at a time with SSE2 (part of the x86_64 baseline).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn split_line_sse2(rest: &[u8], ranges: &mut Vec<(usize, usize)>) -> Line {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    split_line::<16>(rest, ranges, |i| {
        // SAFETY: `split_line` asks only for blocks inside `rest` (i + 16 <= len).
        let v = unsafe { _mm_loadu_si128(rest.as_ptr().add(i).cast::<__m128i>()) };
        let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
        let others = _mm_or_si128(_mm_or_si128(eq(b'\n'), eq(b'\r')), eq(b'"'));
        (
            u64::from(_mm_movemask_epi8(eq(b',')) as u32),
            u64::from(_mm_movemask_epi8(others) as u32),
        )
    })
}

/// [`split_line`] 32 bytes at a time with AVX2, where the CPU has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn split_line_avx2(rest: &[u8], ranges: &mut Vec<(usize, usize)>) -> Line {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    split_line::<32>(rest, ranges, |i| {
        // SAFETY: `split_line` asks only for blocks inside `rest` (i + 32 <= len).
        let v = unsafe { _mm256_loadu_si256(rest.as_ptr().add(i).cast::<__m256i>()) };
        let eq = |c: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8));
        let others = _mm256_or_si256(_mm256_or_si256(eq(b'\n'), eq(b'\r')), eq(b'"'));
        (
            u64::from(_mm256_movemask_epi8(eq(b',')) as u32),
            u64::from(_mm256_movemask_epi8(others) as u32),
        )
    })
}

/// [`split_line`] a byte at a time (other targets, and the tests' reference).
#[cfg(any(test, not(target_arch = "x86_64")))]
fn split_line_scalar(rest: &[u8], ranges: &mut Vec<(usize, usize)>) -> Line {
    split_line::<1>(rest, ranges, |i| match rest[i] {
        b',' => (1, 0),
        b'\n' | b'\r' | b'"' => (0, 1),
        _ => (0, 0),
    })
}

/// Which [`split_line`] this CPU runs.
#[derive(Clone, Copy)]
enum Splitter {
    #[cfg(any(test, not(target_arch = "x86_64")))]
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Sse2,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Splitter {
    fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                return Splitter::Avx2;
            }
            Splitter::Sse2
        }
        #[cfg(not(target_arch = "x86_64"))]
        Splitter::Scalar
    }

    #[inline]
    fn split(self, rest: &[u8], ranges: &mut Vec<(usize, usize)>) -> Line {
        match self {
            #[cfg(any(test, not(target_arch = "x86_64")))]
            Splitter::Scalar => split_line_scalar(rest, ranges),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE2 is part of the x86_64 baseline.
            Splitter::Sse2 => unsafe { split_line_sse2(rest, ranges) },
            // SAFETY: chosen only when the CPU reports AVX2 (`Splitter::best`).
            #[cfg(target_arch = "x86_64")]
            Splitter::Avx2 => unsafe { split_line_avx2(rest, ranges) },
        }
    }
}

/// Walks the records of a CSV buffer, tracking line numbers.
pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    line: u64,
    ranges: Vec<(usize, usize)>,
    slow: csv::ByteRecord,
    splitter: Splitter,
}

impl<'a> Scanner<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Scanner {
            buf: strip_bom(buf),
            pos: 0,
            line: 1,
            ranges: Vec::with_capacity(16),
            slow: csv::ByteRecord::new(),
            splitter: Splitter::best(),
        }
    }

    /// As [`Scanner::new`], splitting a byte at a time (the tests' reference).
    #[cfg(test)]
    fn scalar(buf: &'a [u8]) -> Self {
        Scanner {
            splitter: Splitter::Scalar,
            ..Scanner::new(buf)
        }
    }

    /// The next non-empty record with the line it starts on.
    #[inline]
    pub fn next_row(&mut self) -> Option<(u64, Row<'_>)> {
        loop {
            if self.pos >= self.buf.len() {
                return None;
            }
            let rest = &self.buf[self.pos..];
            let start_line = self.line;
            self.ranges.clear();
            let Line::Plain { end, next } = self.splitter.split(rest, &mut self.ranges) else {
                return self.slow_row(start_line);
            };
            self.pos += next;
            self.line += 1;
            if end == 0 {
                continue;
            }
            return Some((
                start_line,
                Row::Fast {
                    line: &rest[..end],
                    ranges: &self.ranges,
                },
            ));
        }
    }

    #[inline(never)]
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

    fn rows(mut s: Scanner<'_>) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut out = vec![];
        while let Some((line, row)) = s.next_row() {
            out.push((line, row.iter().map(<[u8]>::to_vec).collect()));
        }
        out
    }

    /// The rows as this CPU's splitter reads them, checked against the byte-at-a-time one.
    fn all(input: &[u8]) -> Vec<(u64, Vec<Vec<u8>>)> {
        let got = rows(Scanner::new(input));
        assert_eq!(got, rows(Scanner::scalar(input)), "splitters disagree");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            got,
            rows(Scanner {
                splitter: Splitter::Sse2,
                ..Scanner::new(input)
            }),
            "SSE2 disagrees"
        );
        got
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

    /// Lines long enough for several SIMD blocks, with the special bytes landing on
    /// every position of a block and at its edges.
    #[test]
    fn blocks_and_their_edges() {
        for len in 0..80 {
            for special in [b',', b'\n', b'\r', b'"'] {
                for at in 0..len {
                    let mut input = vec![b'x'; len];
                    input[at] = special;
                    input.extend_from_slice(b",y\r\nz,w\n");
                    let fields: Vec<Vec<Vec<u8>>> = all(&input).into_iter().map(|g| g.1).collect();
                    assert_eq!(fields, with_csv_crate(&input), "{len} {special} {at}");
                }
            }
        }
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
