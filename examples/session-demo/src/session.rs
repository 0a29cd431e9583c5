//! Session ids and the `sid` cookie. Pure functions, no I/O but the CSPRNG.

use std::fmt::Write as _;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "sid";
/// Random bytes in a session id; hex-encoded it is twice as long.
const ID_BYTES: usize = 16;
/// Length of a session id: 32 lowercase hex characters.
pub const ID_LEN: usize = ID_BYTES * 2;
/// Sessions expire after 30 minutes without a visit.
pub const TTL_SECONDS: i64 = 1800;

/// A new session id: 16 bytes from the operating system's CSPRNG, as 32
/// lowercase hex characters.
pub fn new_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes)?;
    let mut id = String::with_capacity(ID_LEN);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(id, "{b:02x}");
    }
    Ok(id)
}

/// Whether `s` has the shape of an id made by [`new_id`]. Anything else a
/// client sends is ignored (and never reaches a Redis key).
pub fn is_valid_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The first well-formed `sid` in the request's `Cookie` header values
/// (`name=value` pairs separated by `;`), if there is one.
pub fn id_from_cookies<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<String> {
    headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| name.trim() == COOKIE_NAME)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .find(|value| is_valid_id(value))
        .map(str::to_owned)
}

/// The `Set-Cookie` value that hands a new session id to the browser.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Lax")
}

/// The Redis key that counts the visits of session `id`.
pub fn visits_key(id: &str) -> String {
    format!("session:{id}:visits")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn new_ids_are_32_lowercase_hex_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{a}"
        );
        assert!(is_valid_id(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn sid_alone_is_found() {
        assert_eq!(
            id_from_cookies([format!("sid={ID}").as_str()]),
            Some(ID.to_owned())
        );
    }

    #[test]
    fn sid_among_other_cookies_is_found() {
        let header = format!("theme=dark; sid={ID};lang=en");
        assert_eq!(id_from_cookies([header.as_str()]), Some(ID.to_owned()));
        // Split over two Cookie headers, and quoted.
        let second = format!("sid=\"{ID}\"");
        assert_eq!(
            id_from_cookies(["theme=dark", second.as_str()]),
            Some(ID.to_owned())
        );
    }

    #[test]
    fn absent_sid_is_none() {
        assert_eq!(id_from_cookies([]), None);
        assert_eq!(id_from_cookies([""]), None);
        assert_eq!(id_from_cookies(["theme=dark; lang=en"]), None);
        // A cookie whose name only ends in "sid" is another cookie.
        assert_eq!(id_from_cookies([format!("xsid={ID}").as_str()]), None);
    }

    #[test]
    fn malformed_sid_is_none() {
        for bad in [
            "sid=",
            "sid",
            "sid=abc",
            "sid=0123456789ABCDEF0123456789ABCDEF", // upper case
            "sid=0123456789abcdef0123456789abcdeg", // not hex
            "sid=0123456789abcdef0123456789abcdef0", // 33 chars
            "sid=0123456789abcdef0123456789abcde*:visits", // key injection
            "sid=0123456789abcdef 0123456789abcdef", // space inside
        ] {
            assert_eq!(id_from_cookies([bad]), None, "{bad}");
        }
    }

    #[test]
    fn a_malformed_sid_does_not_hide_a_good_one() {
        let header = format!("sid=junk; sid={ID}");
        assert_eq!(id_from_cookies([header.as_str()]), Some(ID.to_owned()));
    }

    #[test]
    fn set_cookie_and_key_format() {
        assert_eq!(
            set_cookie(ID),
            format!("sid={ID}; Path=/; HttpOnly; SameSite=Lax")
        );
        assert_eq!(visits_key(ID), format!("session:{ID}:visits"));
    }
}
