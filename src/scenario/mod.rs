//! Scenario files: `raw` mirrors the TOML; `Scenario` holds validated, resolved values.
