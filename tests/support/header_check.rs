//! Our declarations of a C library's interface held against its own header
//! (tests/library_headers.rs: the CUDA libraries; tests/mpi_header.rs: Open MPI). A C++ program,
//! written from what the Rust side declares, includes the headers and prints what they say of
//! the same names; [`mismatches`] lists every difference.
//!
//! - functions: the shape of each (`simclr::abi`: argument count; each argument's pointer,
//!   integer width or float kind);
//! - constants: each enumerator's or macro's value;
//! - layouts: each struct's size and the offsets of the fields named;
//! - handles: each macro that names a library global by address (`MPI_COMM_WORLD` is
//!   `&ompi_mpi_comm_world`) and the symbol we look up for it (needs linking the library).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// What one side declares.
#[derive(Default, Debug)]
pub struct Declared {
    pub shapes: BTreeMap<String, String>,
    pub constants: BTreeMap<String, i64>,
    /// struct → (size, [(field, offset)])
    pub layouts: BTreeMap<String, (usize, Vec<(String, usize)>)>,
    /// macro → the symbol it is the address of
    pub handles: BTreeMap<String, String>,
}

impl Declared {
    pub fn shapes<'a>(&mut self, v: impl IntoIterator<Item = (&'a str, String)>) {
        self.shapes
            .extend(v.into_iter().map(|(n, s)| (n.to_string(), s)));
    }
    pub fn constants<'a>(&mut self, v: impl IntoIterator<Item = (&'a str, i64)>) {
        self.constants
            .extend(v.into_iter().map(|(n, c)| (n.to_string(), c)));
    }
    pub fn layouts(&mut self, v: impl IntoIterator<Item = simclr::abi::Layout>) {
        for (name, size, fields) in v {
            let fields = fields.into_iter().map(|(f, o)| (f.into(), o)).collect();
            self.layouts.insert(name.into(), (size, fields));
        }
    }
}

/// How to build the program: its headers, and what compiling and linking it needs.
pub struct Headers<'a> {
    /// Lines before the includes (a header's own switches).
    pub prelude: &'a str,
    pub includes: &'a [&'a str],
    pub include_dirs: Vec<PathBuf>,
    /// Libraries to link (only `handles` need it: they take the globals' addresses).
    pub link: Vec<String>,
    /// Functions C++ overloads: the C declaration's type, which picks it (and which the header
    /// must declare for the program to compile).
    pub overloaded: &'a [(&'a str, &'a str)],
}

/// The C++ program that prints, from the headers, what `d` names.
fn program(h: &Headers, d: &Declared) -> String {
    let mut s = format!("{}\n", h.prelude);
    for i in h.includes {
        writeln!(s, "#include <{i}>").unwrap();
    }
    s += r#"#include <cstddef>
#include <cstdio>
#include <string>
#include <type_traits>

// The shape class of a type, as simclr::abi::class_of gives it.
template <class T> std::string cls();

// A pointer's: ptr<scalar class>, ptr<ptr>, or ptr (to void, a struct or a function).
template <class T> std::string pointer_cls() {
  using P = std::remove_cv_t<std::remove_pointer_t<T>>;
  if constexpr (std::is_pointer_v<P>) return "ptr<ptr>";
  else if constexpr (std::is_integral_v<P> || std::is_enum_v<P> || std::is_floating_point_v<P>)
    return "ptr<" + cls<P>() + ">";
  else return "ptr";
}

template <class T> std::string cls() {
  if constexpr (std::is_void_v<T>) return "void";
  else if constexpr (std::is_pointer_v<T>) return pointer_cls<T>();
  else if constexpr (std::is_floating_point_v<T>) return sizeof(T) == 4 ? "f32" : "f64";
  else if constexpr (sizeof(T) <= 8 && (sizeof(T) & (sizeof(T) - 1)) == 0)
    return "int" + std::to_string(sizeof(T) * 8);
  else return "struct" + std::to_string(sizeof(T));
}

template <class R, class... A> void shape(const char* name, R (*)(A...)) {
  std::string s = cls<R>() + "(";
  const char* sep = "";
  ((s += sep, s += cls<A>(), sep = ", "), ...);
  std::printf("shape %s %s)\n", name, s.c_str());
}

int main() {
"#;
    // Only the functions' types are used (decltype): nothing links for them.
    for name in d.shapes.keys() {
        match h.overloaded.iter().find(|(n, _)| n == name) {
            Some((_, ty)) => writeln!(
                s,
                "  shape(\"{name}\", (decltype(static_cast<{ty}>(&{name})))nullptr);"
            ),
            None => writeln!(s, "  shape(\"{name}\", (decltype(&{name}))nullptr);"),
        }
        .unwrap();
    }
    for name in d.constants.keys() {
        writeln!(
            s,
            "  std::printf(\"const {name} %lld\\n\", (long long)({name}));"
        )
        .unwrap();
    }
    for (name, (_, fields)) in &d.layouts {
        write!(s, "  std::printf(\"layout {name} %zu").unwrap();
        for (f, _) in fields {
            write!(s, " {f}=%zu").unwrap();
        }
        write!(s, "\\n\", sizeof({name})").unwrap();
        for (f, _) in fields {
            write!(s, ", offsetof({name}, {f})").unwrap();
        }
        writeln!(s, ");").unwrap();
    }
    for (name, symbol) in &d.handles {
        writeln!(
            s,
            "  std::printf(\"handle {name} %s\\n\", \
             (const void*)({name}) == (const void*)&{symbol} ? \"{symbol}\" : \"another\");"
        )
        .unwrap();
    }
    s + "  return 0;\n}\n"
}

/// Compiles and runs the program for `d` against the headers; parses what it prints.
pub fn theirs(h: &Headers, d: &Declared) -> Declared {
    let dir = std::env::temp_dir().join(format!(
        "simclr-header-check-{}-{}",
        std::process::id(),
        h.includes.join("-").replace(['/', '.'], "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("headers.cpp");
    let exe = dir.join("headers");
    std::fs::write(&src, program(h, d)).unwrap();
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let mut cmd = Command::new(&cxx);
    cmd.arg("-std=c++17").arg("-o").arg(&exe).arg(&src);
    for i in &h.include_dirs {
        assert!(i.is_dir(), "{} is not a folder", i.display());
        cmd.arg("-I").arg(i);
    }
    cmd.args(&h.link);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler `{cxx}`: {e}"));
    assert!(
        out.status.success(),
        "the headers did not compile with what we declare ({}):\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "{} failed", exe.display());
    let text = String::from_utf8(out.stdout).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    parse(&text)
}

fn parse(text: &str) -> Declared {
    let mut d = Declared::default();
    for line in text.lines() {
        let (kind, rest) = line.split_once(' ').unwrap();
        let (name, rest) = rest.split_once(' ').unwrap();
        match kind {
            "shape" => {
                d.shapes.insert(name.into(), rest.into());
            }
            "const" => {
                d.constants.insert(name.into(), rest.parse().unwrap());
            }
            "layout" => {
                let mut parts = rest.split(' ');
                let size = parts.next().unwrap().parse().unwrap();
                let fields = parts
                    .map(|p| {
                        let (f, o) = p.split_once('=').unwrap();
                        (f.to_string(), o.parse().unwrap())
                    })
                    .collect();
                d.layouts.insert(name.into(), (size, fields));
            }
            "handle" => {
                d.handles.insert(name.into(), rest.into());
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    d
}

/// Whether our shape `ours` is the header's `theirs`, part by part: equal, or our `ptr` (a
/// pointee our side cannot name: cudarc's enums and structs, `c_void`) for any pointer there.
fn same_shape(ours: &str, theirs: &str) -> bool {
    let parts = |s: &str| -> Vec<String> {
        s.replace('(', ", ")
            .trim_end_matches(')')
            .split(", ")
            .map(String::from)
            .collect()
    };
    let (o, t) = (parts(ours), parts(theirs));
    o.len() == t.len()
        && o.iter()
            .zip(&t)
            .all(|(o, t)| o == t || o == "ptr" && t.starts_with("ptr"))
}

/// Every difference between what we declare and what the headers say, one line each.
/// `may_grow`: structs we may pass larger than the header's (a versioned struct whose library
/// reads only its own size of it); every field the header has must still be where it is.
pub fn mismatches(ours: &Declared, theirs: &Declared, may_grow: &[&str]) -> Vec<String> {
    let mut m = Vec::new();
    for (name, shape) in &ours.shapes {
        match theirs.shapes.get(name) {
            Some(t) if same_shape(shape, t) => {}
            t => m.push(format!(
                "{name}: we call it as {shape}, the header declares {t:?}"
            )),
        }
    }
    for (name, v) in &ours.constants {
        match theirs.constants.get(name) {
            Some(t) if t == v => {}
            t => m.push(format!("{name}: we use {v}, the header says {t:?}")),
        }
    }
    for (name, (size, fields)) in &ours.layouts {
        let Some((tsize, tfields)) = theirs.layouts.get(name) else {
            m.push(format!("{name}: not in the headers' output"));
            continue;
        };
        let grows = may_grow.contains(&name.as_str());
        if size != tsize && !(grows && size > tsize) {
            m.push(format!("{name}: {size} bytes here, {tsize} in the header"));
        }
        for ((f, o), (_, t)) in fields.iter().zip(tfields) {
            if o != t {
                m.push(format!("{name}.{f}: at offset {o} here, {t} in the header"));
            }
        }
    }
    for (name, symbol) in &ours.handles {
        match theirs.handles.get(name) {
            Some(t) if t == symbol => {}
            t => m.push(format!(
                "{name}: we look up {symbol}, the header's macro is {t:?}"
            )),
        }
    }
    m
}
