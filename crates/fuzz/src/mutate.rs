//! Byte- and text-level mutations of valid inputs: bit flips, interesting bytes and
//! integers (little- and big-endian), inserts, deletes, truncation, duplication,
//! splicing with another valid input, and edits of the decimal numbers and quoted
//! words of text headers (safetensors JSON, npy dict), such as a shape of 2⁶⁴ − 1.
//!
//! Every choice is drawn from the caller's seeded RNG, so a seed and an input index
//! give the same bytes on every machine.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Integers at the edges of the usual widths: lengths and dimensions the readers must
/// survive.
pub const INTERESTING: [u64; 20] = [
    0,
    1,
    2,
    3,
    7,
    8,
    255,
    256,
    3073,
    65_535,
    65_536,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    1 << 53,
    1 << 62,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Replacement words for text headers: numbers a parser may overflow on, other dtypes
/// and layouts, JSON/Python literals.
const WORDS: [&str; 24] = [
    "0",
    "-1",
    "1e9",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "9223372036854775807",
    "99999999999999999999999999",
    "F16",
    "BF16",
    "I64",
    "U8",
    "BOOL",
    "F64",
    "<f8",
    ">f4",
    "<c16",
    "|O",
    "True",
    "None",
    "null",
    "[]",
    "()",
    "\"\"",
];

/// Applies 1 to 4 random byte-level mutations to `data`; `other` is a second valid
/// input of the same format, for splicing.
pub fn mutate_bytes(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..rng.random_range(1..=4) {
        mutate_once(rng, data, other);
    }
}

fn mutate_once(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    let at = |rng: &mut ChaCha8Rng| {
        if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        }
    };
    match rng.random_range(0..11) {
        0 if len > 0 => {
            let i = at(rng);
            data[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = at(rng);
            data[i] = [0, 1, 0x7f, 0x80, 0xff, b'9', b'"', b'{'][rng.random_range(0..8)];
        }
        2 => {
            let i = if len == 0 {
                0
            } else {
                rng.random_range(0..=len)
            };
            let n = rng.random_range(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            data.splice(i..i, bytes);
        }
        3 if len > 0 => {
            let i = at(rng);
            let n = rng.random_range(1..=(len - i).min(64));
            data.drain(i..i + n);
        }
        4 => data.truncate(if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        }),
        5 if len > 0 => {
            let i = at(rng);
            let n = rng.random_range(1..=(len - i).min(256));
            let chunk = data[i..i + n].to_vec();
            let j = rng.random_range(0..=len);
            data.splice(j..j, chunk);
        }
        6 if !other.is_empty() => {
            let i = if len == 0 {
                0
            } else {
                rng.random_range(0..=len)
            };
            let j = rng.random_range(0..other.len());
            data.truncate(i);
            data.extend_from_slice(&other[j..]);
        }
        7 | 8 if len > 0 => overwrite_int(rng, data),
        9 | 10 => edit_text(rng, data),
        _ => {}
    }
}

/// Writes an interesting integer (width 1, 2, 4 or 8, LE or BE, sometimes ±1) at a
/// random offset; header fields sit near the start, so half the time it lands in the
/// first 32 bytes.
fn overwrite_int(rng: &mut ChaCha8Rng, data: &mut [u8]) {
    let mut v = INTERESTING[rng.random_range(0..INTERESTING.len())];
    match rng.random_range(0..4) {
        0 => v = v.wrapping_add(1),
        1 => v = v.wrapping_sub(1),
        _ => {}
    }
    let width = [1, 2, 4, 8][rng.random_range(0..4)];
    let bytes = if rng.random() {
        v.to_le_bytes()[..width].to_vec()
    } else {
        v.to_be_bytes()[8 - width..].to_vec()
    };
    let span = if rng.random() {
        data.len().min(32)
    } else {
        data.len()
    };
    let i = rng.random_range(0..span);
    for (k, b) in bytes.into_iter().enumerate() {
        if let Some(slot) = data.get_mut(i + k) {
            *slot = b;
        }
    }
}

/// Replaces a decimal number, a quoted word or a single character of the text in
/// `data` with a word of `WORDS` or a structural character.
pub fn edit_text(rng: &mut ChaCha8Rng, data: &mut Vec<u8>) {
    let spans = token_spans(data);
    let word = WORDS[rng.random_range(0..WORDS.len())].as_bytes().to_vec();
    if spans.is_empty() || rng.random_range(0..4) == 0 {
        let i = if data.is_empty() {
            0
        } else {
            rng.random_range(0..data.len())
        };
        let c = [
            b'{', b'}', b'[', b']', b',', b':', b'"', b'\'', b'\\', b'-', b' ',
        ];
        data.insert(i, c[rng.random_range(0..c.len())]);
        return;
    }
    let (s, e) = spans[rng.random_range(0..spans.len())];
    data.splice(s..e, word);
}

/// Byte ranges of decimal numbers and of the words between quotes.
fn token_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        if c.is_ascii_digit() {
            let s = i;
            while i < data.len() && data[i].is_ascii_digit() {
                i += 1;
            }
            spans.push((s, i));
        } else if c == b'"' || c == b'\'' {
            let s = i + 1;
            i += 1;
            while i < data.len() && data[i] != c && i - s < 64 {
                i += 1;
            }
            if i < data.len() && data[i] == c {
                spans.push((s, i));
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn text_edits_replace_numbers_and_words() {
        assert_eq!(
            token_spans(b"{'shape': (12, 3)}"),
            vec![(2, 7), (11, 13), (15, 16)]
        );
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let base = b"{\"shape\":[2,3]}".to_vec();
        let changed = (0..50)
            .filter(|_| {
                let mut d = base.clone();
                edit_text(&mut rng, &mut d);
                d != base
            })
            .count();
        assert_eq!(changed, 50);
    }

    #[test]
    fn same_seed_same_mutations() {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut d = b"0123456789abcdef".to_vec();
            mutate_bytes(&mut rng, &mut d, b"xyz");
            d
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
