//! `sysinfo/powermaps`: which power supplies (PDU outlets, rectifiers) feed a component, as an
//! admin records it for SMD's clients. Any component may have a map; every xname is checked and
//! normalised.

use skyport_http::ApiError;
use skyport_model::Xname;
use skyport_wire::PowerMap;

use crate::records::{self, POWER_MAPS};
use crate::{Fail, Inventory};

/// A map SMD takes (`pkg/sm/powermap.go` NewPowerMap), normalised; otherwise its text.
fn check(m: &PowerMap) -> Result<PowerMap, String> {
    let id = Xname::parse(&m.id).map_err(|_| format!("xname ID '{}' is invalid", m.id))?;
    let powered_by = m
        .powered_by
        .iter()
        .map(|p| {
            Xname::parse(p)
                .map(|x| x.to_string())
                .map_err(|_| format!("Power supply xname ID '{p}' is invalid"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PowerMap {
        id: id.to_string(),
        powered_by,
    })
}

impl Inventory {
    pub async fn power_maps(&self) -> Result<Vec<PowerMap>, ApiError> {
        self.select(POWER_MAPS, crate::Candidates::All, |_: &PowerMap| true)
            .await
    }

    pub async fn power_map(&self, id: &str) -> Result<PowerMap, ApiError> {
        let x = Xname::parse(id).map_err(|_| ApiError::bad_request("invalid xname"))?;
        let r = self
            .store
            .get(POWER_MAPS, x.as_str())
            .await?
            .ok_or_else(|| ApiError::not_found("no such xname."))?;
        records::decode(POWER_MAPS, &r)
    }

    /// `POST /sysinfo/powermaps`: creates or replaces every map, all or none; how many.
    pub async fn post_power_maps(&self, maps: &[PowerMap]) -> Result<usize, ApiError> {
        let mut valid = Vec::with_capacity(maps.len());
        for (i, m) in maps.iter().enumerate() {
            if m.powered_by.is_empty() {
                return Err(ApiError::bad_request("poweredby is required for PowerMaps")
                    .context(format!("[{i}] {}", m.id)));
            }
            let m = check(m).map_err(|e| {
                ApiError::bad_request(format!("couldn't validate map data at idx {i}: {e}"))
            })?;
            valid.push(m);
        }
        self.write_power_maps(&valid).await?;
        Ok(maps.len())
    }

    /// `PUT /sysinfo/powermaps/{xname}`: creates or replaces one map; the map stored.
    pub async fn put_power_map(&self, url_id: &str, m: &PowerMap) -> Result<PowerMap, ApiError> {
        let m = PowerMap {
            id: crate::put_id(&m.id, url_id)?,
            ..m.clone()
        };
        if m.powered_by.is_empty() {
            return Err(ApiError::bad_request("poweredby is required in PUT body"));
        }
        let m = check(&m)
            .map_err(|e| ApiError::bad_request(format!("couldn't validate PowerMap data: {e}")))?;
        self.write_power_maps(std::slice::from_ref(&m)).await?;
        Ok(m)
    }

    /// Writes `maps` over whatever is stored for them, in one batch.
    async fn write_power_maps(&self, maps: &[PowerMap]) -> Result<(), ApiError> {
        let recs = maps
            .iter()
            .map(records::power_map)
            .collect::<Result<Vec<_>, _>>()?;
        self.upsert_all(POWER_MAPS, recs, Fail::from).await
    }

    pub async fn delete_power_map(&self, id: &str) -> Result<(), ApiError> {
        self.delete_by_xname(POWER_MAPS, id).await
    }

    pub async fn delete_all_power_maps(&self) -> Result<usize, ApiError> {
        self.delete_table(POWER_MAPS).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn xnames_are_checked_and_normalised() {
        let m = |id: &str, by: &[&str]| PowerMap {
            id: id.into(),
            powered_by: by.iter().map(|s| s.to_string()).collect(),
        };
        let ok = check(&m("X0C0S0B0N0", &["x0m0p0j1"])).unwrap();
        assert_eq!(ok, m("x0c0s0b0n0", &["x0m0p0j1"]));
        assert_eq!(
            check(&m("fake", &["x0m0p0j1"])).unwrap_err(),
            "xname ID 'fake' is invalid"
        );
        assert_eq!(
            check(&m("x0c0s0b0n0", &["nope"])).unwrap_err(),
            "Power supply xname ID 'nope' is invalid"
        );
    }
}
