//! `tls`: `[topology] tls = true` for both services, or per service
//! `[origin] tls` / `[proxy] tls` = `true | false | { cert, key, ca }`.
//! Given files are read here, so a bad certificate stops the run at load
//! (exit 2) naming the file, not at the first handshake.

use std::path::Path;

use toml::Spanned;

use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw;
use crate::scenario::{ServiceTls, TlsSettings, Topology};
use crate::tls::{CertSource, Identity, Trust};

pub(super) fn resolve_tls(
    r: &raw::Scenario,
    topology: Option<&Topology>,
    dir: &Path,
    errs: &mut ScenarioErrors,
) -> TlsSettings {
    let both = r.topology.as_ref().and_then(|t| t.tls.as_ref());
    let both_on = both.is_some_and(|b| *b.get_ref());
    let mut out = TlsSettings::default();
    for which in ["origin", "proxy"] {
        let own = match which {
            "origin" => r.origin.as_ref().and_then(|o| o.tls.as_ref()),
            _ => r.proxy.as_ref().and_then(|p| p.tls.as_ref()),
        };
        let key = format!("{which}.tls");
        let setting = match own {
            Some(v) => service_tls(v, &key, dir, errs),
            None if both_on => Some(ServiceTls {
                cert: CertSource::Made,
                ca: None,
                name: None,
            }),
            None => None,
        };
        let Some(setting) = setting else { continue };
        // Only a service netrun starts gets a certificate from it.
        let spawned = topology.map_or(true, |t| match which {
            "origin" => t.origin.is_spawned(),
            _ => t.proxy.is_spawned(),
        });
        if !spawned {
            let (span, key) = match own {
                Some(v) => (Some(v.span()), key),
                None => (both.map(Spanned::span), "topology.tls".to_string()),
            };
            errs.push(
                span,
                key,
                format!(
                    "the {which} is a running service (`topology.{which}.address`): netrun gives \
                     certificates only to the services it starts; remove `tls` for it \
                     (or set `[{which}] tls = false`)"
                ),
            );
            continue;
        }
        match which {
            "origin" => out.origin = Some(setting),
            _ => out.proxy = Some(setting),
        }
    }
    out
}

/// `true` (made for the run), `false`, or `{ cert, key, ca, name }` (PEM
/// files, relative to the scenario; `ca` and `name` optional), read and
/// checked now.
fn service_tls(
    v: &Spanned<toml::Value>,
    key: &str,
    dir: &Path,
    errs: &mut ScenarioErrors,
) -> Option<ServiceTls> {
    let bad = |errs: &mut ScenarioErrors, why: String| {
        errs.push(Some(v.span()), key, why);
        None
    };
    let table = match v.get_ref() {
        toml::Value::Boolean(true) => {
            return Some(ServiceTls {
                cert: CertSource::Made,
                ca: None,
                name: None,
            })
        }
        toml::Value::Boolean(false) => return None,
        toml::Value::Table(t) => t,
        other => {
            return bad(
                errs,
                format!(
                "`{other}` is not a TLS setting; write `true` (a certificate made for the run), \
                     `false`, or `{{ cert = \"cert.pem\", key = \"key.pem\" }}`"
            ),
            )
        }
    };
    if let Some(unknown) = table
        .keys()
        .find(|k| !["cert", "key", "ca", "name"].contains(&k.as_str()))
    {
        return bad(
            errs,
            format!(
                "`{unknown}` is not a TLS key; use `cert`, `key` and optionally `ca` and `name`"
            ),
        );
    }
    let name = match table.get("name") {
        None => None,
        Some(toml::Value::String(n))
            if rustls::pki_types::ServerName::try_from(n.as_str()).is_ok() =>
        {
            Some(n.clone())
        }
        Some(other) => {
            return bad(
                errs,
                format!(
                    "`name` is `{other}`; give the DNS name (or IP address) the certificate \
                     carries, e.g. name = \"origin.example\""
                ),
            )
        }
    };
    let path = |name: &str| match table.get(name) {
        Some(toml::Value::String(s)) => Ok(Some(dir.join(s))),
        Some(other) => Err(format!(
            "`{name}` is `{other}`; give a PEM file's path as a string"
        )),
        None => Ok(None),
    };
    let (cert, key_file, ca) = match (path("cert"), path("key"), path("ca")) {
        (Ok(Some(c)), Ok(Some(k)), Ok(ca)) => (c, k, ca),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return bad(errs, e),
        _ => return bad(
            errs,
            "give both `cert` and `key` (PEM files, relative to the scenario), or `tls = true` \
                 to make a certificate for the run"
                .into(),
        ),
    };
    if let Err(e) = Identity::from_files(&cert, &key_file) {
        return bad(errs, e.to_string());
    }
    if let Some(ca) = &ca {
        if let Err(e) = crate::tls::client_config(&Trust::CaFile(ca.clone()), &[]) {
            return bad(errs, e.to_string());
        }
    }
    Some(ServiceTls {
        cert: CertSource::Files {
            cert,
            key: key_file,
        },
        ca,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::scenario::ServiceTls;
    use crate::tls::{CertSource, Identity};

    #[test]
    fn topology_tls_makes_certificates_for_both_services() {
        let s = valid(&format!("[topology]\ntls = true\n{}", http("")));
        let t = &s.variants[0].plan.tls;
        let made = Some(ServiceTls {
            cert: CertSource::Made,
            ca: None,
            name: None,
        });
        assert_eq!((&t.origin, &t.proxy), (&made, &made));
        assert!(t.makes_ca());
        // Per service, over the topology's.
        let s = valid(&format!(
            "[topology]\ntls = true\n[proxy]\ntls = false\n{}",
            http("")
        ));
        let t = &s.variants[0].plan.tls;
        assert_eq!((&t.origin, &t.proxy), (&made, &None));
        let s = valid(&format!("[origin]\ntls = true\n{}", http("")));
        assert_eq!(s.variants[0].plan.tls.proxy, None);
        assert!(valid(&http("")).variants[0].plan.tls == Default::default());
    }

    #[test]
    fn given_files_are_read_at_load_and_bad_ones_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::made(&[]).unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        id.write_pem(&cert, &key).unwrap();
        let ca = id.write_ca(&dir.path().join("ca.pem")).unwrap().unwrap();
        let table = |c: &std::path::Path, k: &std::path::Path| {
            format!(
                "[origin]\ntls = {{ cert = \"{}\", key = \"{}\", ca = \"{}\" }}\n{}",
                c.display(),
                k.display(),
                ca.display(),
                http("")
            )
        };
        let s = valid(&table(&cert, &key));
        let t = s.variants[0].plan.tls.origin.clone().unwrap();
        assert_eq!(t.ca.as_deref(), Some(ca.as_path()));
        assert!(!s.variants[0].plan.tls.makes_ca());

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "junk").unwrap();
        let m = problem(&table(&junk, &key), "origin.tls");
        assert!(
            m.contains("junk.pem") && m.contains("BEGIN CERTIFICATE"),
            "{m}"
        );
        let m = problem(&table(&cert, &dir.path().join("none.pem")), "origin.tls");
        assert!(m.contains("none.pem"), "{m}");

        // `name`: what clients check the certificate against.
        let named = |name: &str| {
            format!(
                "[origin]\ntls = {{ cert = \"{}\", key = \"{}\", name = {name} }}\n{}",
                cert.display(),
                key.display(),
                http("")
            )
        };
        let s = valid(&named("\"origin.example\""));
        let t = s.variants[0].plan.tls.origin.clone().unwrap();
        assert_eq!(t.name.as_deref(), Some("origin.example"));
        let m = problem(&named("\"not a name\""), "origin.tls");
        assert!(m.contains("`name` is") && m.contains("DNS name"), "{m}");
        let m = problem(&named("1"), "origin.tls");
        assert!(m.contains("`name` is `1`"), "{m}");
    }

    #[test]
    fn bad_settings_name_their_key() {
        let m = problem(
            &format!("[proxy]\ntls = \"yes\"\n{}", http("")),
            "proxy.tls",
        );
        assert!(m.contains("not a TLS setting"), "{m}");
        let m = problem(
            &format!("[proxy]\ntls = {{ cert = \"c.pem\" }}\n{}", http("")),
            "proxy.tls",
        );
        assert!(m.contains("both `cert` and `key`"), "{m}");
        let m = problem(
            &format!("[proxy]\ntls = {{ crt = \"c.pem\" }}\n{}", http("")),
            "proxy.tls",
        );
        assert!(m.contains("`crt` is not a TLS key"), "{m}");
        let m = problem(
            &format!(
                "[topology]\ntls = true\norigin = {{ address = \"127.0.0.1:8000\" }}\n{}",
                http("")
            ),
            "topology.tls",
        );
        assert!(m.contains("running service"), "{m}");
    }
}
