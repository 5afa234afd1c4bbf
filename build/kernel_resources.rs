//! What ptxas reports for every kernel on the native architecture (`nvcc --resource-usage`, read
//! from the same compile that makes the fatbins, so it costs no second compile): registers,
//! barriers, static shared memory, local memory (the stack frame) and spills. build.rs writes
//! the table as `$OUT_DIR/kernel_resources.rs` (included by src/cuda/kernel_resources.rs).

/// One kernel's resources on one architecture, as ptxas reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub module: String,
    pub kernel: String,
    pub registers: u32,
    pub barriers: u32,
    pub shared_bytes: u32,
    pub stack_bytes: u32,
    pub spill_store_bytes: u32,
    pub spill_load_bytes: u32,
}

/// The number written just before `unit` in `line` ("Used 14 registers" → 14 for " registers").
fn number_before(line: &str, unit: &str) -> Option<u32> {
    let end = line.find(unit)?;
    let digits = line[..end].rsplit(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// (kernel, architecture) of ptxas's "Compiling entry function 'k' for 'sm_90'" line.
fn entry(line: &str) -> Option<(&str, &str)> {
    if !line.contains("Compiling entry function '") {
        return None;
    }
    match line.split('\'').collect::<Vec<_>>()[..] {
        [_, kernel, " for ", arch, ..] => Some((kernel, arch)),
        _ => None,
    }
}

/// Reads every entry function compiled for `arch` (e.g. `sm_90`) from nvcc's output for
/// `module`: its "Function properties" (stack frame, spills) and "Used" (registers, barriers,
/// shared memory) lines. Other architectures and non-entry functions are skipped; an entry
/// function missing either line is an error, so a change in ptxas's wording cannot make the
/// table silently empty.
pub fn parse(module: &str, arch: &str, text: &str) -> Result<Vec<Resources>, String> {
    let mut found = Vec::new();
    let mut current: Option<(Resources, bool)> = None;
    let mut lines = text.lines();
    let incomplete = |r: &Resources| {
        format!(
            "ptxas's report for {module}.cu: entry function {} has no complete \
             'Function properties' and 'Used' lines",
            r.kernel
        )
    };
    while let Some(line) = lines.next() {
        if let Some((name, entry_arch)) = entry(line) {
            if let Some((r, _)) = current.take() {
                return Err(incomplete(&r));
            }
            if entry_arch == arch {
                let r = Resources {
                    module: module.to_string(),
                    kernel: name.to_string(),
                    ..Resources::default()
                };
                current = Some((r, false));
            }
        } else if let Some(name) = line.split("Function properties for ").nth(1) {
            // The next line holds the properties, for this entry or for a callee.
            let props = lines.next().unwrap_or_default();
            if let Some((r, seen)) = current.as_mut().filter(|(r, _)| r.kernel == name.trim()) {
                let field = |unit| {
                    number_before(props, unit)
                        .ok_or_else(|| format!("{module}.cu {name}: no{unit} in {props:?}"))
                };
                r.stack_bytes = field(" bytes stack frame")?;
                r.spill_store_bytes = field(" bytes spill stores")?;
                r.spill_load_bytes = field(" bytes spill loads")?;
                *seen = true;
            }
        } else if line.contains(" registers") {
            if let Some((mut r, seen)) = current.take() {
                if !seen {
                    return Err(incomplete(&r));
                }
                r.registers = number_before(line, " registers").ok_or_else(|| incomplete(&r))?;
                r.barriers = number_before(line, " barriers").unwrap_or(0);
                r.shared_bytes = number_before(line, " bytes smem").unwrap_or(0);
                found.push(r);
            }
        }
    }
    match current {
        Some((r, _)) => Err(incomplete(&r)),
        None => Ok(found),
    }
}

/// The table as Rust source: `KERNEL_RESOURCES`, sorted by module then kernel.
pub fn render(table: &[Resources]) -> String {
    let mut rows = table.to_vec();
    rows.sort_by(|a, b| (&a.module, &a.kernel).cmp(&(&b.module, &b.kernel)));
    let mut s = String::from(
        "/// ptxas's report for every kernel on sm_90, written by build.rs \
         (build/kernel_resources.rs).\npub static KERNEL_RESOURCES: &[KernelResources] = &[\n",
    );
    for r in rows {
        s += &format!(
            "    KernelResources {{ module: {:?}, kernel: {:?}, registers: {}, barriers: {}, \
             shared_bytes: {}, stack_bytes: {}, spill_store_bytes: {}, spill_load_bytes: {} }},\n",
            r.module,
            r.kernel,
            r.registers,
            r.barriers,
            r.shared_bytes,
            r.stack_bytes,
            r.spill_store_bytes,
            r.spill_load_bytes
        );
    }
    s + "];\n"
}
