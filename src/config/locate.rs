//! The line of a dotted field path in the sweep file's text, for error messages.

/// The 1-based line of the key at `path` in block-style YAML, found by indentation: each
/// key is looked for among the lines indented deeper than its parent, after the parent.
/// `None` when the path is empty or not written in block style (e.g. flow `{a: 1}`).
pub(super) fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut start, mut parent_indent, mut found) = (0usize, -1i64, None);
    for key in path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let body = line.trim_start();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let indent = (line.len() - body.len()) as i64;
            if indent <= parent_indent {
                break;
            }
            let body = body.strip_prefix("- ").unwrap_or(body);
            let unquoted = body.trim_start_matches(['"', '\'']);
            if unquoted.starts_with(key)
                && unquoted[key.len()..]
                    .trim_start_matches(['"', '\''])
                    .starts_with(':')
            {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        start = i + 1;
        parent_indent = indent;
        found = Some(i + 1);
    }
    found
}
