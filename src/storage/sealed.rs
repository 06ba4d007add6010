//! Checksummed JSON lines: every line popsweep appends to a journal or to `trials.jsonl`
//! ends with its own CRC-32, `…,"crc":"1a2b3c4d"}`.
//!
//! A damaged byte range usually leaves invalid JSON, but not always: a changed digit turns
//! trial 12's record into a valid record of trial 19, which would then shadow the real one.
//! The checksum tells such a line apart, so damage loses only the lines it touched. The
//! field is an ordinary JSON member at the end of the object, so `jq` and pandas read the
//! files as before; lines without it (written by hand, or by an older popsweep) are read
//! as they are.

/// `,"crc":"` + 8 hex digits + `"}`.
const SUFFIX_LEN: usize = 18;
const SUFFIX_HEAD: &str = ",\"crc\":\"";

/// `json` (one serialized object, `{…}`) with its checksum as a last member.
pub fn seal(json: &str) -> String {
    // Operations and records always have members, so the checksum follows a comma.
    debug_assert!(json.ends_with('}') && json != "{}", "{json}");
    let crc = crc32fast::hash(json.as_bytes());
    format!("{},\"crc\":\"{crc:08x}\"}}", &json[..json.len() - 1])
}

/// The JSON object of a line, checked against its checksum when it has one.
pub fn unseal(line: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    let n = line.len();
    let tail = line.get(n.saturating_sub(SUFFIX_LEN)..).unwrap_or("");
    let sealed = tail.starts_with(SUFFIX_HEAD) && tail.ends_with("\"}");
    if sealed {
        let hex = &tail[SUFFIX_HEAD.len()..SUFFIX_HEAD.len() + 8];
        let want = u32::from_str_radix(hex, 16).map_err(|_| "a damaged checksum".to_string())?;
        let body = format!("{}}}", &line[..n - SUFFIX_LEN]);
        if crc32fast::hash(body.as_bytes()) != want {
            return Err("checksum mismatch (the line was damaged)".into());
        }
        return Ok(body.into());
    }
    // A line that ends almost like a seal is a sealed line with damage in its seal.
    let tail = line
        .as_bytes()
        .get(n.saturating_sub(2 * SUFFIX_LEN)..)
        .unwrap_or(&[]);
    let names_crc = tail.windows(4).any(|w| w == b"crc\"" || w == b"\"crc");
    if names_crc || seal_likeness(line.as_bytes()) >= SUFFIX_LEN - 3 {
        return Err("a damaged checksum".into());
    }
    // Readers decode damaged bytes as U+FFFD; popsweep never writes it (it writes UTF-8).
    if line.contains(char::REPLACEMENT_CHARACTER) {
        return Err("bytes that are not UTF-8".into());
    }
    Ok(line.into())
}

/// How many of a line's last 18 bytes fit the seal's shape (its fixed characters where
/// they are, hex digits where the checksum is).
fn seal_likeness(line: &[u8]) -> usize {
    const TEMPLATE: &[u8; SUFFIX_LEN] = b",\"crc\":\"########\"}";
    let Some(tail) = line.get(line.len().saturating_sub(SUFFIX_LEN)..) else {
        return 0;
    };
    let offset = SUFFIX_LEN - tail.len();
    tail.iter()
        .zip(&TEMPLATE[offset..])
        .filter(|&(&b, &t)| match t {
            b'#' => b.is_ascii_hexdigit(),
            t => b == t,
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_reads_back_and_any_changed_byte_is_caught() {
        let json = r#"{"number":12,"state":"complete","value":0.5}"#;
        let line = seal(json);
        assert!(line.starts_with(r#"{"number":12,"state":"complete","value":0.5,"crc":""#));
        assert_eq!(unseal(&line).unwrap(), json);
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["number"], 12, "still plain JSON");
        for i in 0..line.len() {
            let mut bytes = line.clone().into_bytes();
            bytes[i] = if bytes[i] == b'9' { b'8' } else { b'9' };
            let damaged = String::from_utf8(bytes).unwrap();
            assert!(unseal(&damaged).is_err(), "byte {i}: {damaged}");
        }
        assert_eq!(unseal(json).unwrap(), json, "an unsealed line as it is");
    }
}
