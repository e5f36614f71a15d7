use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn date(secs: u64) -> String {
    httpdate::fmt_http_date(at(secs))
}

#[test]
fn lists_split_on_commas_outside_quotes_and_comments() {
    let cases: &[(&str, &[&str])] = &[
        ("a, b,c", &["a", "b", "c"]),
        ("", &[]),
        (" , ,a,, ", &["a"]),
        (r#""a,b", "c""#, &[r#""a,b""#, r#""c""#]),
        (r#"W/"x,y",W/"z""#, &[r#"W/"x,y""#, r#"W/"z""#]),
        (
            r#"no-cache="set-cookie, x", max-age=5"#,
            &[r#"no-cache="set-cookie, x""#, "max-age=5"],
        ),
        // An escaped quote does not end the quoted string.
        (r#""a\",b", c"#, &[r#""a\",b""#, "c"]),
        // An unclosed quote holds the rest together.
        (r#""a,"22-x""#, &[r#""a,"22-x""#]),
        // Parentheses mean nothing outside fields with comments.
        ("(a, b)", &["(a", "b)"]),
    ];
    for (text, want) in cases {
        assert_eq!(split_list(text), *want, "{text}");
    }
    assert_eq!(
        split_list_with_comments("1.1 a (x, (y, z)), 1.0 b"),
        ["1.1 a (x, (y, z))", "1.0 b"]
    );
}

#[test]
fn members_of_every_line() {
    let h = headers(&[("connection", "close, x-a"), ("connection", "x-b")]);
    assert_eq!(
        list_members(&h, header::CONNECTION),
        ["close", "x-a", "x-b"]
    );
}

#[test]
fn entity_tags_parse_and_compare() {
    let cases: &[(&str, Option<(bool, &str)>)] = &[
        (r#""abc""#, Some((false, "abc"))),
        (r#"W/"abc""#, Some((true, "abc"))),
        (r#""a,b""#, Some((false, "a,b"))),
        (r#""""#, Some((false, ""))),
        ("abc", None),
        (r#""abc"#, None),
        (r#"w/"abc""#, None),
        (r#""a"b""#, None),
        (r#""a" , "b""#, None),
        ("*", None),
    ];
    for (text, want) in cases {
        let got = EntityTag::parse(text).map(|t| (t.weak, t.opaque));
        assert_eq!(got, *want, "{text}");
    }
    let strong = EntityTag::parse(r#""1""#).unwrap();
    let weak = EntityTag::parse(r#"W/"1""#).unwrap();
    let other = EntityTag::parse(r#""2""#).unwrap();
    // RFC 9110 §8.8.3.2's table.
    assert!(!weak.strong_eq(&weak) && weak.weak_eq(&weak));
    assert!(!weak.strong_eq(&strong) && weak.weak_eq(&strong));
    assert!(!strong.strong_eq(&other) && !strong.weak_eq(&other));
    assert!(strong.strong_eq(&strong) && strong.weak_eq(&strong));
}

#[test]
fn conditional_get_table() {
    let now = at(1_000);
    let lm = Some(at(100));
    let tag = Some(r#""v1""#);
    let comma_tag = Some(r#""a,b""#);
    type Case<'a> = (&'a str, &'a [(&'a str, String)], Option<&'a str>, bool);
    let cases: &[Case] = &[
        ("nothing asked", &[], tag, false),
        (
            "same tag",
            &[("if-none-match", r#""v1""#.into())],
            tag,
            true,
        ),
        (
            "weak matches strong",
            &[("if-none-match", r#"W/"v1""#.into())],
            tag,
            true,
        ),
        (
            "another tag",
            &[("if-none-match", r#""v2""#.into())],
            tag,
            false,
        ),
        (
            "in a list",
            &[("if-none-match", r#""v0", "v1""#.into())],
            tag,
            true,
        ),
        (
            "on a second line",
            &[
                ("if-none-match", r#""v0""#.into()),
                ("if-none-match", r#""v1""#.into()),
            ],
            tag,
            true,
        ),
        ("star", &[("if-none-match", "*".into())], tag, true),
        (
            "star without an etag",
            &[("if-none-match", "*".into())],
            None,
            true,
        ),
        (
            "a tag, none held",
            &[("if-none-match", r#""v1""#.into())],
            None,
            false,
        ),
        (
            "a comma inside the tag",
            &[("if-none-match", r#""a,b""#.into())],
            comma_tag,
            true,
        ),
        (
            "half of a comma tag",
            &[("if-none-match", r#""a""#.into())],
            comma_tag,
            false,
        ),
        (
            "malformed list does not match its tail",
            &[("if-none-match", r#""a,"v1""#.into())],
            tag,
            false,
        ),
        (
            "INM wins over IMS",
            &[
                ("if-none-match", r#""v2""#.into()),
                ("if-modified-since", date(500)),
            ],
            tag,
            false,
        ),
        (
            "IMS after the change",
            &[("if-modified-since", date(100))],
            tag,
            true,
        ),
        ("IMS later", &[("if-modified-since", date(500))], tag, true),
        (
            "IMS before the change",
            &[("if-modified-since", date(99))],
            tag,
            false,
        ),
        (
            "IMS in the future is ignored",
            &[("if-modified-since", date(2_000))],
            tag,
            false,
        ),
        (
            "IMS not a date",
            &[("if-modified-since", "yesterday".into())],
            tag,
            false,
        ),
        (
            "IMS twice is ignored",
            &[
                ("if-modified-since", date(500)),
                ("if-modified-since", date(500)),
            ],
            tag,
            false,
        ),
    ];
    for (what, pairs, etag, want) in cases {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let req = headers(&pairs);
        assert_eq!(not_modified(&req, *etag, lm, now), *want, "{what}");
    }
    // Without a Last-Modified, a date asks nothing that can be answered.
    let req = headers(&[("if-modified-since", &date(500))]);
    assert!(!not_modified(&req, None, None, now));
    // Sub-second modification times compare at HTTP's one-second resolution.
    let req = headers(&[("if-modified-since", &date(100))]);
    let lm = Some(at(100) + Duration::from_millis(999));
    assert!(not_modified(&req, None, lm, now));
}

#[test]
fn if_range_table() {
    let lm = Some(at(100));
    let cases: &[(&str, Option<String>, Option<&str>, bool)] = &[
        ("absent", None, Some(r#""v1""#), true),
        (
            "strong match",
            Some(r#""v1""#.into()),
            Some(r#""v1""#),
            true,
        ),
        ("other tag", Some(r#""v2""#.into()), Some(r#""v1""#), false),
        (
            "weak in the request",
            Some(r#"W/"v1""#.into()),
            Some(r#""v1""#),
            false,
        ),
        (
            "weak stored",
            Some(r#""v1""#.into()),
            Some(r#"W/"v1""#),
            false,
        ),
        ("tag, none stored", Some(r#""v1""#.into()), None, false),
        ("same date", Some(date(100)), None, true),
        ("later date", Some(date(101)), None, false),
        ("not a date", Some("soon".into()), None, false),
    ];
    for (what, if_range, etag, want) in cases {
        let req = match if_range {
            Some(v) => headers(&[("if-range", v)]),
            None => HeaderMap::new(),
        };
        assert_eq!(if_range_holds(&req, *etag, lm), *want, "{what}");
    }
    let req = headers(&[("if-range", &date(100))]);
    assert!(
        !if_range_holds(&req, None, None),
        "a date, no Last-Modified"
    );
}

#[test]
fn max_forwards_values() {
    let cases: &[(&str, Option<u32>)] = &[
        ("0", Some(0)),
        (" 3 ", Some(3)),
        ("99999999999", Some(u32::MAX)),
        ("-1", None),
        ("", None),
        ("1, 2", None),
    ];
    for (text, want) in cases {
        assert_eq!(
            max_forwards(&headers(&[("max-forwards", text)])),
            *want,
            "{text:?}"
        );
    }
    assert_eq!(max_forwards(&HeaderMap::new()), None);
}
