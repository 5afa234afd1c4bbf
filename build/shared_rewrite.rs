//! `__shared__` declarations of the kernels, rewritten for the emulated device so that every
//! access to shared memory reaches its checks (emu/shared.cpp).
//!
//! GCC's address instrumentation leaves out an access to a thread-local variable at a constant
//! offset (`s[0]`, a scalar `bool last`), so declaring shared variables `static thread_local`
//! hid those accesses. Each declaration `__shared__ DECL;` becomes, on the same lines,
//!
//! ```text
//! struct emu_shared_<file>_<line> { DECL; }; static thread_local emu_shared_<file>_<line> <v>;
//! static const bool <v>_name =
//!     emu_shared_declared(&<v>.name, sizeof(<v>.name), "name (file:line)");
//! (void)<v>_name; auto& name = emu_launder(&<v>)->name; ...
//! ```
//!
//! per declared name: its registration, once per process, so the emulator knows each variable's
//! bytes and name (emu/shared_vars.cpp), and a reference through a pointer the compiler cannot
//! see through (`emu_launder`, cuda_emu.h), so every access is instrumented. Line numbers stay
//! as they were.

use std::path::Path;

/// The red zone after each shared variable (and before the first of a declaration).
const RED: &str = "unsigned char";
const RED_BYTES: usize = 64;

/// Copies every file of `src` into `dst`, `__shared__` declarations rewritten.
pub fn rewrite_dir(src: &Path, dst: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    for entry in std::fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path.is_file() {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = rewrite(&text, name).map_err(|e| format!("{}: {e}", path.display()))?;
        write_if_changed(&dst.join(name), &out)?;
    }
    Ok(())
}

/// Writes only when the text differs, so an unchanged copy keeps its time stamp.
fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `text` (the file `file`) with each `__shared__` declaration rewritten.
pub fn rewrite(text: &str, file: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let tag: String = file
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut out = String::with_capacity(text.len() + 1024);
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        if let Some(end) = skip_comment_or_literal(b, i) {
            i = end;
            continue;
        }
        if !starts_word(b, i, "__shared__") {
            i += 1;
            continue;
        }
        let line = 1 + b[..i].iter().filter(|&&c| c == b'\n').count();
        if text[copied..i].trim_end().ends_with("extern") {
            return Err(format!(
                "line {line}: dynamic shared memory (extern __shared__) is not emulated"
            ));
        }
        let start = i + "__shared__".len();
        let semi = statement_end(b, start)
            .ok_or_else(|| format!("line {line}: a __shared__ declaration without its `;`"))?;
        let decl = &text[start..semi];
        let parts = declarators(decl);
        if parts.is_empty() {
            return Err(format!("line {line}: no name in `__shared__{decl};`"));
        }
        let ty = format!("emu_shared_{tag}_{line}");
        let var = format!("{ty}_v");
        out.push_str(&text[copied..i]);
        out.push_str(&format!("struct {ty} {{ {RED} emu_red_0[{RED_BYTES}];"));
        // One member per declarator, each followed by a red zone: an access past a variable's
        // end lands in bytes that belong to no variable.
        let base = &parts[0].text[..parts[0].name_at];
        for (k, d) in parts.iter().enumerate() {
            if k > 0 && (base.contains(['*', '&', '{']) || d.text[..d.name_at].contains(['*', '&']))
            {
                return Err(format!(
                    "line {line}: declare each __shared__ pointer, reference or struct on its own"
                ));
            }
            let member = if k == 0 {
                d.text.clone()
            } else {
                format!("{} {}", base.trim(), d.text.trim())
            };
            out.push_str(&format!("{member}; {RED} emu_red_{}[{RED_BYTES}];", k + 1));
        }
        out.push_str(&format!(" }}; static thread_local {ty} {var};"));
        for d in &parts {
            let n = &d.name;
            out.push_str(&format!(
                " static const bool {var}_{n} = emu_shared_declared(&{var}.{n}, sizeof({var}.{n}), \
                 \"{n} ({file}:{line})\"); (void){var}_{n}; auto& {n} = emu_launder(&{var})->{n};"
            ));
        }
        i = semi + 1;
        copied = i;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn starts_word(b: &[u8], i: usize, w: &str) -> bool {
    b[i..].starts_with(w.as_bytes())
        && (i == 0 || !is_ident(b[i - 1]))
        && b.get(i + w.len()).is_none_or(|&c| !is_ident(c))
}

/// The end of a comment or a string or character literal starting at `i`, if one does.
fn skip_comment_or_literal(b: &[u8], i: usize) -> Option<usize> {
    match (b[i], b.get(i + 1)) {
        (b'/', Some(b'/')) => Some(
            b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p),
        ),
        (b'/', Some(b'*')) => Some(
            b[i + 2..]
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(b.len(), |p| i + 2 + p + 2),
        ),
        (q @ (b'"' | b'\''), _) => {
            let mut j = i + 1;
            while j < b.len() && b[j] != q {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some((j + 1).min(b.len()))
        }
        _ => None,
    }
}

/// The `;` ending the statement that starts at `i` (outside brackets, comments and literals).
fn statement_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0i32;
    while i < b.len() {
        if let Some(end) = skip_comment_or_literal(b, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b';' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// One declarator of a declaration: its text and its name's place in it.
struct Declarator {
    text: String,
    name: String,
    name_at: usize,
}

/// The declarators of a declaration (split at commas outside brackets and template arguments),
/// each named by its last identifier outside brackets.
fn declarators(decl: &str) -> Vec<Declarator> {
    let mut out = Vec::new();
    let (mut depth, mut seg_start) = (0i32, 0usize);
    let mut last: Option<(String, usize)> = None;
    let mut word_start: Option<usize> = None;
    let b = decl.as_bytes();
    for i in 0..=b.len() {
        let c = b.get(i).copied().unwrap_or(b',');
        if is_ident(c) && i < b.len() {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(w) = word_start.take() {
            if depth == 0 && !b[w].is_ascii_digit() {
                last = Some((decl[w..i].to_string(), w - seg_start));
            }
        }
        match c {
            b'(' | b'[' | b'{' | b'<' => depth += 1,
            b')' | b']' | b'}' | b'>' => depth -= 1,
            b',' if depth == 0 => {
                if let Some((name, name_at)) = last.take() {
                    out.push(Declarator {
                        text: decl[seg_start..i.min(b.len())].to_string(),
                        name,
                        name_at,
                    });
                }
                seg_start = i + 1;
            }
            _ => {}
        }
    }
    out
}
