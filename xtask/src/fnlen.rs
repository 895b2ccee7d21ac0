//! `cargo xtask layout`, function length: no `fn` in non-test code spans more than
//! [`MAX_FN_LINES`] lines (issue 11: "no function over ~80 lines outside numerical
//! kernels"; docs/STYLE.md asks for functions short enough to read at once).
//!
//! A function's length is counted from the line of its `fn` keyword to the line of
//! the `}` that closes its body, both included. The scanner first blanks out comments
//! (line, block, nested block), string literals (plain, byte, raw `r#"…"#`) and char
//! literals (telling `'a'` from the lifetime `'a`), keeping every newline, so that
//! braces inside them do not count; it then matches braces on what is left. Items
//! under `#[cfg(test)]` (the `mod tests` blocks) and files in `tests/` folders are
//! skipped, as are the numerical kernels of [`KERNEL_FILES`]. There is no other
//! exemption: a long function is split, not listed.

use std::path::Path;

/// The longest function allowed, in lines (`fn` line to closing brace, inclusive).
pub const MAX_FN_LINES: usize = 80;

/// Numerical kernels, exempt from the length limit by issue 11: long straight-line
/// formulas read best in one piece next to the paper they transcribe.
const KERNEL_FILES: &[&str] = &[
    // Lanczos / LOBPCG eigen-solvers: one loop per published algorithm.
    "crates/hessian/src/eigen.rs",
    // Activation derivatives up to third order, one closed form per activation.
    "crates/model/src/activation.rs",
    // Taylor-mode (jet) propagation rules, one per primitive.
    "crates/model/src/jet.rs",
];

/// One function over the limit.
#[derive(Debug, PartialEq)]
pub struct LongFn {
    pub name: String,
    /// 1-based line of the `fn` keyword.
    pub line: usize,
    pub lines: usize,
}

/// The problems of the workspace at `root`, one line per over-long function.
pub fn check(root: &Path, files: &[std::path::PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap_or(f)
            .to_string_lossy()
            .replace('\\', "/");
        if rel.split('/').any(|c| c == "tests") || KERNEL_FILES.contains(&rel.as_str()) {
            continue;
        }
        let text =
            std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{rel}: cannot read: {e}"))?;
        for long in long_fns(&text, MAX_FN_LINES) {
            problems.push(format!(
                "{rel}:{}: fn `{}` is {} lines long (at most {MAX_FN_LINES}); split it",
                long.line, long.name, long.lines
            ));
        }
    }
    Ok(problems)
}

/// The functions of `text` (outside `#[cfg(test)]` items) longer than `max` lines.
pub fn long_fns(text: &str, max: usize) -> Vec<LongFn> {
    fn_spans(&mask(text))
        .into_iter()
        .filter(|f| f.lines > max)
        .collect()
}

/// `text` with comments and the insides of string and char literals replaced by
/// spaces (newlines kept, so line numbers survive). Quotes stay, so `"{"` → `" "`.
pub fn mask(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(c.len());
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && is_ident_char(c[i - 1]);
        i = if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            line_comment(&c, i, &mut out)
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            block_comment(&c, i, &mut out)
        } else if let Some(hashes) = raw_string_start(&c, i, prev_ident) {
            raw_string(&c, i, hashes, &mut out)
        } else if c[i] == '"' {
            string(&c, i, &mut out)
        } else if c[i] == '\'' && (!prev_ident || byte_prefix(&c, i)) {
            char_or_lifetime(&c, i, &mut out)
        } else {
            out.push(c[i]);
            i + 1
        };
    }
    out.into_iter().collect()
}

fn is_ident_char(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// A character inside a literal or comment: a space, or the newline it was.
fn blank(ch: char) -> char {
    if ch == '\n' {
        '\n'
    } else {
        ' '
    }
}

/// Blanks the `//` comment at `i`; returns the index of its newline.
fn line_comment(c: &[char], mut i: usize, out: &mut Vec<char>) -> usize {
    while i < c.len() && c[i] != '\n' {
        out.push(' ');
        i += 1;
    }
    i
}

/// Blanks the (possibly nested) `/* … */` comment at `i`; returns the index past it.
fn block_comment(c: &[char], mut i: usize, out: &mut Vec<char>) -> usize {
    let mut depth = 0usize;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            depth += 1;
            out.extend([' ', ' ']);
            i += 2;
        } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
            depth -= 1;
            out.extend([' ', ' ']);
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            out.push(blank(c[i]));
            i += 1;
        }
    }
    i
}

/// Blanks the inside of the raw string at `i` (`r"…"`, `r#"…"#`, `br#"…"#`: no
/// escapes; it ends at a `"` followed by `hashes` `#`s); returns the index past it.
fn raw_string(c: &[char], mut i: usize, hashes: usize, out: &mut Vec<char>) -> usize {
    while c[i] != '"' {
        out.push(c[i]);
        i += 1;
    }
    out.push('"');
    i += 1;
    while i < c.len() {
        if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
            out.push('"');
            out.extend(std::iter::repeat_n('#', hashes));
            return i + 1 + hashes;
        }
        out.push(blank(c[i]));
        i += 1;
    }
    i
}

/// Blanks the inside of the `"…"` string at `i` (with `\` escapes); returns the
/// index past it.
fn string(c: &[char], mut i: usize, out: &mut Vec<char>) -> usize {
    out.push('"');
    i += 1;
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            out.push(' ');
            i += 1;
        }
        if i < c.len() {
            out.push(blank(c[i]));
            i += 1;
        }
    }
    if i < c.len() {
        out.push('"');
        i += 1;
    }
    i
}

/// At the `'` at `i`: blanks a char literal (`'\…'` or `'x'`) and returns the index
/// past it, or keeps the `'` of a lifetime or label and returns `i + 1`.
fn char_or_lifetime(c: &[char], i: usize, out: &mut Vec<char>) -> usize {
    let end = if c.get(i + 1) == Some(&'\\') {
        (i + 3..c.len()).find(|&j| c[j] == '\'')
    } else if c.get(i + 2) == Some(&'\'') {
        Some(i + 2)
    } else {
        None
    };
    out.push('\'');
    match end {
        Some(e) => {
            out.extend((i + 1..e).map(|_| ' '));
            out.push('\'');
            e + 1
        }
        None => i + 1,
    }
}

/// Is the `'` at `i` preceded by a lone `b` (a byte literal `b'x'`)?
fn byte_prefix(c: &[char], i: usize) -> bool {
    i >= 1 && c[i - 1] == 'b' && (i < 2 || !is_ident_char(c[i - 2]))
}

/// At `i`, the start of a raw string (`r`, `br`, then `#`s, then `"`)? Its hash count.
fn raw_string_start(c: &[char], i: usize, prev_ident: bool) -> Option<usize> {
    if prev_ident {
        return None;
    }
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&ch| ch == '#').count();
    (c.get(j + hashes) == Some(&'"')).then_some(hashes)
}

/// Every function with a body in masked text, with its length in lines.
pub fn fn_spans(masked: &str) -> Vec<LongFn> {
    let b = masked.as_bytes();
    let line_of = |pos: usize| 1 + b[..pos].iter().filter(|&&x| x == b'\n').count();
    let is_ident = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"#[cfg(test)]") {
            // Skip the item the attribute guards: up to its `;` or its closing brace.
            i = item_end(b, i + "#[cfg(test)]".len());
            continue;
        }
        let word_start = i == 0 || !is_ident(b[i - 1]);
        let keyword = b[i..].starts_with(b"fn") && !b.get(i + 2).is_some_and(|&x| is_ident(x));
        if word_start && keyword {
            let rest = &b[i + 2..];
            let rest = &rest[rest.iter().take_while(|x| x.is_ascii_whitespace()).count()..];
            let len = rest.iter().take_while(|&&x| is_ident(x)).count();
            let name = String::from_utf8_lossy(&rest[..len]).into_owned();
            if !name.is_empty() {
                let mut j = i + 2;
                let mut paren = 0i32;
                while j < b.len() {
                    match b[j] {
                        b'(' | b'[' => paren += 1,
                        b')' | b']' => paren -= 1,
                        b';' if paren == 0 => break,
                        b'{' if paren == 0 => break,
                        _ => {}
                    }
                    j += 1;
                }
                if j < b.len() && b[j] == b'{' {
                    let close = matching_brace(b, j);
                    out.push(LongFn {
                        name,
                        line: line_of(i),
                        lines: line_of(close) - line_of(i) + 1,
                    });
                }
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    out
}

/// The index of the `}` closing the `{` at `open` (or the end of the text).
fn matching_brace(b: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, &x) in b.iter().enumerate().skip(open) {
        match x {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    b.len().saturating_sub(1)
}

/// The index just past the item starting at `from`: past its first top-level `;`, or
/// past the brace closing its first `{`.
fn item_end(b: &[u8], from: usize) -> usize {
    let mut paren = 0i32;
    for k in from..b.len() {
        match b[k] {
            b'(' | b'[' => paren += 1,
            b')' | b']' => paren -= 1,
            b';' if paren == 0 => return k + 1,
            b'{' if paren == 0 => return matching_brace(b, k) + 1,
            _ => {}
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(src: &str) -> Vec<(String, usize)> {
        fn_spans(&mask(src))
            .into_iter()
            .map(|f| (f.name, f.lines))
            .collect()
    }

    #[test]
    fn counts_lines_from_fn_to_closing_brace() {
        let src = "fn a() {\n    1;\n}\n\nfn b() -> u8 { 2 }\nfn decl();\n";
        assert_eq!(spans(src), vec![("a".into(), 3), ("b".into(), 1)]);
        // Nested functions and methods count on their own; `fn(u8)` types are not fns.
        let src =
            "impl X {\n    pub fn m(&self, f: fn(u8) -> u8) {\n        fn inner() {}\n    }\n}\n";
        assert_eq!(spans(src), vec![("m".into(), 3), ("inner".into(), 1)]);
    }

    #[test]
    fn braces_in_literals_and_comments_do_not_count() {
        let src = concat!(
            "fn a() {\n",
            "    let s = \"}}\\\"}\";\n",
            "    let r = r#\"}\"# ;\n",
            "    let c = '}'; let d = '\\'';\n",
            "    // }\n",
            "    /* } /* nested } */ } */\n",
            "    let x: &'static str = s;\n",
            "}\n",
            "fn b() {}\n",
        );
        assert_eq!(spans(src), vec![("a".into(), 8), ("b".into(), 1)]);
        // Lifetimes are not char literals: the `{` after `'a` is real.
        let src = "fn f<'a>(x: &'a u8) -> &'a u8 {\n    x\n}\n";
        assert_eq!(spans(src), vec![("f".into(), 3)]);
        assert_eq!(mask("\"a\\nb\" x"), "\"    \" x");
        // Byte literals and non-ASCII text.
        let src = "fn a() { let b = b'{'; let u = \"é{\"; }\nfn b() {\n}\n";
        assert_eq!(spans(src), vec![("a".into(), 1), ("b".into(), 2)]);
        assert_eq!(mask("br##\"}\"#\"##;"), "br##\"   \"##;");
    }

    #[test]
    fn test_modules_are_skipped_and_the_limit_applies() {
        let body = "    x();\n".repeat(5);
        let src = format!(
            "fn long() {{\n{body}}}\n#[cfg(test)]\nmod tests {{\n    fn t() {{\n{body}}}\n}}\nfn after() {{}}\n"
        );
        assert_eq!(spans(&src), vec![("long".into(), 7), ("after".into(), 1)]);
        let long = long_fns(&src, 6);
        assert_eq!(
            long,
            vec![LongFn {
                name: "long".into(),
                line: 1,
                lines: 7
            }]
        );
        assert!(long_fns(&src, 7).is_empty());
    }
}
