//! The structure rules of /work/shared/STYLE.md ("A layout that shows the architecture"), checked
//! on the source tree so CI keeps them: files of a readable size, no module dependency cycles,
//! protocol code that knows nothing of the web layer or of axum, pages that do not talk to the
//! store. Each rule is its own test and lists every offender.
//!
//! Pure std: a small lexer drops comments, strings and character literals, so a doc comment that
//! mentions `crate::oidc` or axum is not a reference. Module references are the paths that start
//! with `crate::`, `super::` or `self::` (in `use` trees, grouped forms included, and inline), plus
//! `use child::…` of a child module; each resolves to the deepest module with a file
//! (`src/a/b.rs` or `src/a/b/mod.rs`). Items under `#[cfg(test)]` are left out of the module
//! graph.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// The longest a source file may be.
const MAX_LINES: usize = 600;

/// Layers that never touch the HTTP framework (STYLE.md: protocol logic never imports axum).
const NO_AXUM: &[&str] = &[
    "src/oauth/",
    "src/oidc/",
    "src/domain/",
    "src/store/",
    "src/crypto/",
    "src/admin/",
    "src/accounts/",
];

#[test]
fn no_source_file_is_over_600_lines() {
    let tree = Tree::load();
    let long = over_long(&tree.files);
    assert!(
        long.is_empty(),
        "{} file(s) in src/ are over {MAX_LINES} lines; split them by responsibility:\n{}",
        long.len(),
        long.join("\n")
    );
}

#[test]
fn no_module_dependency_cycle() {
    let tree = Tree::load();
    let cycles = cycles(&tree);
    assert!(
        cycles.is_empty(),
        "{} group(s) of modules depend on each other in a cycle in src/ (each: its modules, \
         the shortest cycle through each, and every edge among them with where it is made):\n{}",
        cycles.len(),
        cycles.join("\n")
    );
}

#[test]
fn oauth_does_not_reference_oidc() {
    let tree = Tree::load();
    let found = references_into(&tree, |f| f.starts_with("src/oauth/"), &["oidc"]);
    assert!(
        found.is_empty(),
        "src/oauth/ is the OAuth 2.0 core and must not reference crate::oidc (OpenID Connect \
         builds on OAuth, not the other way round); {} reference(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn top_level_state_does_not_reference_web() {
    let tree = Tree::load();
    let found = references_into(&tree, |f| f == "src/state.rs", &["web"]);
    assert!(
        found.is_empty(),
        "src/state.rs sits below the web layer and must not reference crate::web (or move it to \
         src/web/state.rs); {} reference(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn accounts_and_protocol_layers_do_not_reference_axum() {
    let tree = Tree::load();
    let found = axum_references(&tree.files, NO_AXUM);
    assert!(
        found.is_empty(),
        "{} must not reference axum (HTTP belongs to src/web/); {} reference(s):\n{}",
        NO_AXUM.join(", "),
        found.len(),
        found.join("\n")
    );
}

#[test]
fn pages_make_no_store_calls() {
    let tree = Tree::load();
    let found = store_calls(&tree.files, "src/web/pages/");
    assert!(
        found.is_empty(),
        "src/web/pages/ handlers parse, call one service function and render; they never talk to \
         the store (move the calls into src/accounts/); {} store call(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

/// The checks themselves catch what they are meant to, on a small made-up tree (so a rule that
/// passes on the real tree passes because the tree obeys it, not because the check is blind).
#[test]
fn the_checks_catch_known_violations() {
    let long = "fn f() {}\n".repeat(MAX_LINES + 1);
    let tree = Tree::from_sources(vec![
        (
            "src/lib.rs",
            "pub mod a; pub mod b; pub mod c; pub mod d; pub mod oauth; pub mod oidc;".into(),
        ),
        // Grouped use with a nested group and `self`: a → b (via b::inner) and a → c.
        ("src/a.rs", "use crate::{b::{self, inner::X}, c};\n".into()),
        ("src/b/mod.rs", "pub mod inner;\npub use inner::X;\n".into()),
        // An inline path inside a function body: inner → d; d → a closes a → inner → d → a.
        // (b/mod.rs re-exporting its child is no dependency, so b/mod.rs is in no cycle.)
        (
            "src/b/inner.rs",
            "pub struct X;\nfn g() { crate::d::f(); }\n// crate::c::nothing in a comment\n".into(),
        ),
        ("src/d.rs", "use crate::a as the_a;\n".into()),
        // Only test code and strings point back at a: no cycle a ↔ c.
        (
            "src/c.rs",
            "const S: &str = \"crate::a::x\";\n#[cfg(test)]\nmod tests { use crate::a; }\n".into(),
        ),
        (
            "src/oauth/mod.rs",
            "pub mod token;\nuse axum::Router;\nfn h(s: &S) { s.provider.store.find(); }\n".into(),
        ),
        (
            "src/oauth/token.rs",
            "use super::super::oidc::id_token;\n".into(),
        ),
        ("src/oidc/mod.rs", "pub mod id_token;\n".into()),
        ("src/oidc/id_token.rs", long),
    ]);
    assert_eq!(
        over_long(&tree.files),
        ["  src/oidc/id_token.rs: 601 lines"]
    );

    let cycles = cycles(&tree);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0].contains("src/a.rs → src/b/inner.rs → src/d.rs → src/a.rs"),
        "{}",
        cycles[0]
    );
    assert!(cycles[0].contains("src/d.rs:1: crate::a"), "{}", cycles[0]);
    assert!(!cycles[0].contains("src/c.rs"), "{}", cycles[0]);
    assert!(!cycles[0].contains("src/b/mod.rs"), "{}", cycles[0]);

    let oidc = references_into(&tree, |f| f.starts_with("src/oauth/"), &["oidc"]);
    assert_eq!(
        oidc,
        ["  src/oauth/token.rs:1: use super::super::oidc::id_token;"]
    );
    let axum = axum_references(&tree.files, &["src/oauth/"]);
    assert_eq!(axum, ["  src/oauth/mod.rs:2: use axum::Router;"]);
    let store = store_calls(&tree.files, "src/oauth/");
    assert_eq!(
        store,
        ["  src/oauth/mod.rs:3: fn h(s: &S) { s.provider.store.find(); }"]
    );
    assert!(axum_references(&tree.files, &["src/accounts/"]).is_empty());
}

/// What is not code is not a reference; what is code is, however it is written.
#[test]
fn the_lexer_sees_only_code() {
    let src = r##"
/* crate::x /* nested crate::x */ still a comment crate::x */
const Q: char = '"'; const B: u8 = b'"'; const E: char = '\''; // crate::x
const R: &str = r#"crate::x " still raw crate::x"#;
fn f<'a>(s: &'a str) -> &'a str { let _ = "a \" crate::x"; crate::real::one(s) }
macro_rules! m { () => { $crate::x::y() }; }
fn g() {
    state
        .provider
        .store
        .find(1)
        .await;
    use crate::store::prelude::*;
}
"##;
    let tokens = lex(src);
    let paths: Vec<String> = module_paths(&tokens)
        .iter()
        .map(|p| format!("{}: {}", p.line, p.segments.join("::")))
        .collect();
    assert_eq!(paths, ["5: crate::real::one", "13: crate::store::prelude"]);
    let file = SourceFile {
        rel: "src/web/pages/x.rs".into(),
        module: module_of("src/web/pages/x.rs"),
        lines: src.lines().map(str::to_owned).collect(),
        tokens,
    };
    assert_eq!(file.module, ["web", "pages", "x"]);
    assert_eq!(
        store_calls(&[file], "src/web/pages/"),
        [
            "  src/web/pages/x.rs:10: state.provider.store.find(1)",
            "  src/web/pages/x.rs:13: use crate::store::prelude::*;"
        ]
    );
}

// --- the rules -------------------------------------------------------------------------------

fn over_long(files: &[SourceFile]) -> Vec<String> {
    files
        .iter()
        .filter(|f| f.lines.len() > MAX_LINES)
        .map(|f| format!("  {}: {} lines", f.rel, f.lines.len()))
        .collect()
}

/// The lines (outside `#[cfg(test)]`) of files matching `from` that reference a module under
/// `prefix`, as "file:line: code".
fn references_into(tree: &Tree, from: impl Fn(&str) -> bool, prefix: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (fi, file) in tree.files.iter().enumerate() {
        if !from(&file.rel) {
            continue;
        }
        let lines: BTreeSet<usize> = tree.refs[fi]
            .iter()
            .filter(|r| {
                r.absolute.len() >= prefix.len()
                    && r.absolute.iter().zip(prefix).all(|(a, b)| a == b)
            })
            .map(|r| r.line)
            .collect();
        found.extend(lines.into_iter().map(|l| file.cite(l)));
    }
    found
}

/// Lines of files under `dirs` whose code (not comments or strings) names axum or its companions.
fn axum_references(files: &[SourceFile], dirs: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files
        .iter()
        .filter(|f| dirs.iter().any(|d| f.rel.starts_with(d)))
    {
        let lines: BTreeSet<usize> = f
            .tokens
            .iter()
            .filter(|t| {
                matches!(&t.tok, Tok::Ident(s) if s == "axum" || s.starts_with("axum_")
                    || s == "utoipa_axum")
            })
            .map(|t| t.line)
            .collect();
        found.extend(lines.into_iter().map(|l| f.cite(l)));
    }
    found
}

/// Lines of files under `dir` whose code reaches the store: a `.store` field or method
/// (`provider.store.…`, `state.provider.store`) or `store::prelude`.
fn store_calls(files: &[SourceFile], dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    for f in files.iter().filter(|f| f.rel.starts_with(dir)) {
        let t = &f.tokens;
        let lines: BTreeSet<usize> = (1..t.len())
            .filter(|&i| {
                let store = t[i].tok == Tok::Ident("store".into());
                let field = t[i - 1].tok == Tok::Punct('.');
                let prelude = t[i - 1].tok == Tok::PathSep
                    && t[i].tok == Tok::Ident("prelude".into())
                    && i >= 2
                    && t[i - 2].tok == Tok::Ident("store".into());
                (store && field) || prelude
            })
            .map(|i| t[i].line)
            .collect();
        found.extend(lines.into_iter().map(|l| f.cite_chain(l)));
    }
    found
}

/// Each strongly connected component of more than one module, described by one cycle through
/// it and then every edge among its modules.
fn cycles(tree: &Tree) -> Vec<String> {
    let n = tree.files.len();
    // Edges: source file → target file, with the first reference that makes each.
    let mut edges: Vec<BTreeMap<usize, String>> = vec![BTreeMap::new(); n];
    for (fi, refs) in tree.refs.iter().enumerate() {
        let here = &tree.files[fi].module;
        for r in refs {
            let target = &tree.files[r.file].module;
            // A parent declaring or re-exporting its children is not a dependency.
            if r.file == fi || target.starts_with(here) {
                continue;
            }
            edges[fi]
                .entry(r.file)
                .or_insert_with(|| format!("{}:{}: {}", tree.files[fi].rel, r.line, r.written));
        }
    }
    let adjacency: Vec<Vec<usize>> = edges.iter().map(|e| e.keys().copied().collect()).collect();
    let mut out = Vec::new();
    for scc in tarjan(&adjacency) {
        if scc.len() < 2 {
            continue;
        }
        let members: BTreeSet<usize> = scc.iter().copied().collect();
        let names: Vec<&str> = members
            .iter()
            .map(|&i| tree.files[i].rel.as_str())
            .collect();
        let mut text = format!("  modules: {}\n", names.join(", "));
        // The shortest cycle through each module, each cycle once.
        let mut seen = BTreeSet::new();
        for &m in &members {
            let mut cycle = shortest_cycle(&adjacency, &members, m);
            cycle.pop();
            let lowest = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
            cycle.rotate_left(lowest);
            if seen.insert(cycle.clone()) {
                let path: Vec<&str> = cycle
                    .iter()
                    .chain(cycle.first())
                    .map(|&i| tree.files[i].rel.as_str())
                    .collect();
                text.push_str(&format!("  cycle: {}\n", path.join(" → ")));
            }
        }
        for &m in &members {
            for (to, why) in &edges[m] {
                if members.contains(to) {
                    text.push_str(&format!("    {why}  (→ {})\n", tree.files[*to].rel));
                }
            }
        }
        out.push(text);
    }
    out
}

/// Tarjan's strongly connected components (iterative, so deep graphs cannot overflow).
fn tarjan(adjacency: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adjacency.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut sccs = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its adjacency list)
        let mut work = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&(v, pos)) = work.last() {
            if let Some(&w) = adjacency[v].get(pos) {
                work.last_mut().expect("non-empty").1 += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut scc = Vec::new();
                loop {
                    let w = stack.pop().expect("on stack");
                    on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                sccs.push(scc);
            }
        }
    }
    sccs
}

/// The shortest path `start → … → start` inside `members` (breadth-first).
fn shortest_cycle(adjacency: &[Vec<usize>], members: &BTreeSet<usize>, start: usize) -> Vec<usize> {
    let mut previous: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &adjacency[v] {
            if !members.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                let mut at = v;
                while at != start {
                    at = previous[&at];
                    path.push(at);
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if w != start && !previous.contains_key(&w) {
                previous.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start]
}

// --- the source tree -------------------------------------------------------------------------

struct SourceFile {
    /// "src/oauth/token.rs"
    rel: String,
    /// Its module path: `["oauth", "token"]` (`[]` for src/lib.rs).
    module: Vec<String>,
    lines: Vec<String>,
    tokens: Vec<Token>,
}

impl SourceFile {
    fn cite(&self, line: usize) -> String {
        let text = self.lines.get(line - 1).map_or("", |l| l.trim());
        format!("  {}:{line}: {text}", self.rel)
    }

    /// Like `cite`, but a line of a method chain split by rustfmt (`.store`) comes with the
    /// chain around it: `state.provider.store.find_client(&id)`.
    fn cite_chain(&self, line: usize) -> String {
        let trimmed = |n: usize| self.lines.get(n).map_or("", |l| l.trim());
        let (mut first, mut last) = (line - 1, line - 1);
        while first > 0 && trimmed(first).starts_with('.') {
            first -= 1;
        }
        while last + 1 < self.lines.len() && trimmed(last + 1).starts_with('.') && last < line {
            last += 1;
        }
        let text: String = (first..=last).map(trimmed).collect();
        format!("  {}:{line}: {text}", self.rel)
    }
}

/// A reference from one file to a module: as written, resolved to an absolute path, and the
/// file that holds the deepest existing module of that path.
struct Reference {
    line: usize,
    written: String,
    absolute: Vec<String>,
    file: usize,
}

struct Tree {
    files: Vec<SourceFile>,
    /// `refs[i]`: the module references of `files[i]` (outside `#[cfg(test)]`).
    refs: Vec<Vec<Reference>>,
}

impl Tree {
    /// The library's sources under src/ (src/main.rs is the binary's crate root, not a module).
    fn load() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        collect_rs(&root.join("src"), &mut paths);
        let sources: Vec<(String, String)> = paths
            .into_iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(root)
                    .expect("under the crate")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
                (rel, text)
            })
            .collect();
        let tree = Self::from_sources(sources);
        // Guard against checking nothing (a wrong directory, a lexer that lost the tree).
        assert!(
            tree.files.len() > 20 && tree.files.iter().any(|f| f.rel == "src/lib.rs"),
            "expected the crate's sources under src/, found {} files",
            tree.files.len()
        );
        let references: usize = tree.refs.iter().map(Vec::len).sum();
        assert!(
            references > 100,
            "only {references} module references found"
        );
        tree
    }

    fn from_sources<S: Into<String>>(sources: Vec<(S, String)>) -> Self {
        let mut files: Vec<SourceFile> = sources
            .into_iter()
            .map(|(rel, text)| {
                let rel = rel.into();
                SourceFile {
                    module: module_of(&rel),
                    lines: text.lines().map(str::to_owned).collect(),
                    tokens: lex(&text),
                    rel,
                }
            })
            .collect();
        files.retain(|f| f.rel != "src/main.rs" && !f.rel.starts_with("src/bin/"));
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        let modules: BTreeMap<Vec<String>, usize> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        let refs = files
            .iter()
            .map(|f| {
                module_paths(&f.tokens)
                    .into_iter()
                    .filter_map(|p| resolve(&p, &f.module, &modules))
                    .collect()
            })
            .collect();
        Self { files, refs }
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// "src/a/b.rs" and "src/a/b/mod.rs" → `["a", "b"]`; "src/lib.rs" → `[]`.
fn module_of(rel: &str) -> Vec<String> {
    let inner = rel
        .strip_prefix("src/")
        .unwrap_or(rel)
        .trim_end_matches(".rs");
    let mut parts: Vec<String> = inner.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod")) || parts == ["lib"] {
        parts.pop();
    }
    parts
}

/// A path found in code: its segments, the line, and the module (file module + inline `mod`s)
/// it was written in.
struct FoundPath {
    segments: Vec<String>,
    line: usize,
    /// Inline modules between the file's module and the place of the path.
    inline: Vec<String>,
}

fn resolve(
    found: &FoundPath,
    file_module: &[String],
    modules: &BTreeMap<Vec<String>, usize>,
) -> Option<Reference> {
    let mut here: Vec<String> = file_module.to_vec();
    here.extend(found.inline.iter().cloned());
    let seg = &found.segments;
    let first = seg.first()?;
    let absolute: Vec<String> = match first.as_str() {
        "crate" => seg[1..].to_vec(),
        "self" => here.iter().chain(&seg[1..]).cloned().collect(),
        "super" => {
            let mut base = here;
            let supers = seg.iter().take_while(|s| *s == "super").count();
            for _ in 0..supers {
                base.pop()?;
            }
            base.extend(seg[supers..].iter().cloned());
            base
        }
        // `use child::…` of a child module of this file (2018 uniform paths); anything else is
        // another crate.
        _ => {
            let mut child = file_module.to_vec();
            child.push(first.clone());
            if !modules.contains_key(&child) {
                return None;
            }
            file_module.iter().chain(seg).cloned().collect()
        }
    };
    let file = (0..=absolute.len())
        .rev()
        .find_map(|n| modules.get(&absolute[..n]).copied())?;
    Some(Reference {
        line: found.line,
        written: seg.join("::"),
        absolute,
        file,
    })
}

// --- lexing and paths ------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    /// A string, character or number literal, or a lifetime.
    Literal,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Rust source → tokens, without comments; literals become `Tok::Literal`.
fn lex(text: &str) -> Vec<Token> {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let word_char = |i: usize| at(i).is_alphanumeric() || at(i) == '_';
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    // From `i` (just after an opening quote) to just after `close`, honouring backslash escapes
    // when `escapes`; counts newlines.
    let skip_quoted = |i: &mut usize, line: &mut usize, close: &str, escapes: bool| {
        let close: Vec<char> = close.chars().collect();
        while *i < c.len() && !c[*i..].starts_with(&close) {
            let step = if escapes && c[*i] == '\\' { 2 } else { 1 };
            *line += c[*i..(*i + step).min(c.len())]
                .iter()
                .filter(|&&x| x == '\n')
                .count();
            *i += step;
        }
        *i += close.len();
    };
    while i < c.len() {
        let (ch, start_line) = (c[i], line);
        let tok = if ch.is_whitespace() {
            line += usize::from(ch == '\n');
            i += 1;
            None
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            None
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    (depth, i) = (depth + 1, i + 2);
                } else if c[i] == '*' && at(i + 1) == '/' {
                    (depth, i) = (depth - 1, i + 2);
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
            None
        } else if ch == '"' {
            i += 1;
            skip_quoted(&mut i, &mut line, "\"", true);
            Some(Tok::Literal)
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // '\n', '\'', '\u{1F600}'
                i += 1;
                skip_quoted(&mut i, &mut line, "'", true);
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or a label: 'a, 'static.
                i += 1;
                while word_char(i) {
                    i += 1;
                }
            }
            Some(Tok::Literal)
        } else if ch.is_ascii_digit() {
            while word_char(i) || (at(i) == '.' && at(i + 1).is_ascii_digit()) {
                i += 1;
            }
            Some(Tok::Literal)
        } else if ch.is_alphabetic() || ch == '_' {
            let begin = i;
            while word_char(i) {
                i += 1;
            }
            let word: String = c[begin..i].iter().collect();
            let raw_string = matches!(word.as_str(), "r" | "br" | "cr")
                && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '#' | '"')));
            if raw_string {
                // r"…", r#"…"#, br##"…"##
                let hashes = (i..).take_while(|&k| at(k) == '#').count();
                i += hashes + 1;
                skip_quoted(
                    &mut i,
                    &mut line,
                    &format!("\"{}", "#".repeat(hashes)),
                    false,
                );
                Some(Tok::Literal)
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i += 1;
                skip_quoted(&mut i, &mut line, "\"", true);
                Some(Tok::Literal)
            } else if word == "b" && at(i) == '\'' {
                i += 1;
                skip_quoted(&mut i, &mut line, "'", true);
                Some(Tok::Literal)
            } else if word == "r" && at(i) == '#' {
                // A raw identifier: r#type.
                let begin = i + 1;
                i += 1;
                while word_char(i) {
                    i += 1;
                }
                Some(Tok::Ident(c[begin..i].iter().collect()))
            } else {
                Some(Tok::Ident(word))
            }
        } else if ch == ':' && at(i + 1) == ':' {
            i += 2;
            Some(Tok::PathSep)
        } else {
            i += 1;
            Some(Tok::Punct(ch))
        };
        if let Some(tok) = tok {
            out.push(Token {
                tok,
                line: start_line,
            });
        }
    }
    out
}

fn is_ident(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Ident(s), .. }) if s == word)
}

fn is_punct(t: Option<&Token>, ch: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(p), .. }) if *p == ch)
}

/// The module paths of a file's code: every path of every `use` tree, and every inline path that
/// starts with `crate::`, `super::` or `self::`. Items under `#[cfg(test)]` are skipped.
fn module_paths(t: &[Token]) -> Vec<FoundPath> {
    let mut out = Vec::new();
    // Inline modules: (name, brace depth of their body).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut cfg_test = false;
    let mut i = 0;
    while i < t.len() {
        let names = || inline.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        // Attributes: #[…] and #![…].
        if is_punct(t.get(i), '#') {
            let mut j = i + 1;
            if is_punct(t.get(j), '!') {
                j += 1;
            }
            if is_punct(t.get(j), '[') {
                let end = matching(t, j, '[', ']');
                let body: Vec<&Tok> = t[j + 1..end].iter().map(|x| &x.tok).collect();
                if body
                    == [
                        &Tok::Ident("cfg".into()),
                        &Tok::Punct('('),
                        &Tok::Ident("test".into()),
                        &Tok::Punct(')'),
                    ]
                {
                    cfg_test = true;
                }
                i = end + 1;
                continue;
            }
        }
        if cfg_test {
            // Skip the item: up to its `;` or through its `{ … }`.
            cfg_test = false;
            let mut nest = 0usize;
            while i < t.len() {
                match &t[i].tok {
                    Tok::Punct('(' | '[') => nest += 1,
                    Tok::Punct(')' | ']') => nest = nest.saturating_sub(1),
                    Tok::Punct(';') if nest == 0 => break,
                    Tok::Punct('{') if nest == 0 => {
                        i = matching(t, i, '{', '}');
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        match &t[i].tok {
            Tok::Ident(w) if w == "mod" => {
                if let Some(Token {
                    tok: Tok::Ident(name),
                    ..
                }) = t.get(i + 1)
                    && is_punct(t.get(i + 2), '{')
                {
                    depth += 1;
                    inline.push((name.clone(), depth));
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(w) if w == "use" => {
                let line = t[i].line;
                let mut j = i + 1;
                let mut paths = Vec::new();
                use_tree(t, &mut j, Vec::new(), &mut paths);
                let inline_names = names();
                out.extend(
                    paths
                        .into_iter()
                        .filter(|p| !p.is_empty())
                        .map(|segments| FoundPath {
                            segments,
                            line,
                            inline: inline_names.clone(),
                        }),
                );
                // To the end of the statement.
                while j < t.len() && !is_punct(t.get(j), ';') {
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            Tok::Ident(w)
                if matches!(w.as_str(), "crate" | "super" | "self")
                    && t.get(i + 1).is_some_and(|n| n.tok == Tok::PathSep)
                    && !(i > 0
                        && (t[i - 1].tok == Tok::PathSep || is_punct(t.get(i - 1), '$'))) =>
            {
                let line = t[i].line;
                let mut segments = vec![w.clone()];
                let mut j = i + 1;
                while t.get(j).is_some_and(|n| n.tok == Tok::PathSep) {
                    match t.get(j + 1) {
                        Some(Token {
                            tok: Tok::Ident(s), ..
                        }) => {
                            segments.push(s.clone());
                            j += 2;
                        }
                        _ => break,
                    }
                }
                out.push(FoundPath {
                    segments,
                    line,
                    inline: names(),
                });
                i = j;
                continue;
            }
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The index of the token closing the group opened at `open_at`.
fn matching(t: &[Token], open_at: usize, open: char, close: char) -> usize {
    let mut nest = 0;
    for (k, tok) in t.iter().enumerate().skip(open_at) {
        if tok.tok == Tok::Punct(open) {
            nest += 1;
        } else if tok.tok == Tok::Punct(close) {
            nest -= 1;
            if nest == 0 {
                return k;
            }
        }
    }
    t.len() - 1
}

/// One `use` tree from `*j`: `a::b`, `a::b as c`, `a::*`, `a::{self, b::{c, d}}`; each leaf
/// path (with `self` meaning the path it is in) goes to `out`.
fn use_tree(t: &[Token], j: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match t.get(*j).map(|x| &x.tok) {
            Some(Tok::PathSep) => *j += 1,
            Some(Tok::Ident(s)) => {
                // `self` inside a group names the group's own path; `self::` at the start is a
                // path of its own.
                if s != "self" || path.is_empty() {
                    path.push(s.clone());
                }
                *j += 1;
                if t.get(*j).is_some_and(|x| x.tok == Tok::PathSep) {
                    *j += 1;
                    continue;
                }
                break;
            }
            Some(Tok::Punct('*')) => {
                *j += 1;
                break;
            }
            Some(Tok::Punct('{')) => {
                *j += 1;
                while *j < t.len() && !is_punct(t.get(*j), '}') {
                    let before = *j;
                    use_tree(t, j, path.clone(), out);
                    if is_punct(t.get(*j), ',') || *j == before {
                        *j += 1;
                    }
                }
                *j += 1;
                return;
            }
            _ => break,
        }
    }
    if is_ident(t.get(*j), "as") {
        *j += 2;
    }
    out.push(path);
}
