//! Query filters for `State/Components`, `memberships`, `Inventory/RedfishEndpoints`,
//! `Inventory/ComponentEndpoints` and `groups`, parsed and matched as SMD does: parameter names
//! case-insensitive and repeatable, values validated against the HMS vocabularies (a bad value
//! is a 400 naming it), `!value` negation, values ORed within a parameter and parameters ANDed,
//! NID ranges paired by position. Routes parse them from the query string; other services build
//! them with their constructors (`ComponentFilter::of_type`), never from query text.

use std::str::FromStr;

use skyport_http::{ApiError, QueryParams, parse_bool};
use skyport_model::{Arch, Class, Flag, HmsType, Mac, Role, State, SubRole, Xname};
use skyport_wire::Component;

/// Values of one enum-valued parameter: matches if it equals any included value and none of
/// the excluded ones (`?type=!NodeBMC`).
#[derive(Debug, Clone, Default)]
pub struct OneOf {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl OneOf {
    fn parse<T: FromStr + ToString>(
        q: &QueryParams,
        name: &str,
        what: &str,
    ) -> Result<OneOf, ApiError> {
        let mut f = OneOf::default();
        for v in q.all(name) {
            let (neg, raw) = match v.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, v),
            };
            let canon = raw
                .parse::<T>()
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "bad query param: Argument was not a valid {what}"
                    ))
                    .context(format!("{name}={v:?}"))
                })?
                .to_string();
            if neg {
                f.exclude.push(canon);
            } else {
                f.include.push(canon);
            }
        }
        Ok(f)
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    pub fn matches(&self, v: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|i| i == v))
            && !self.exclude.iter().any(|e| e == v)
    }
}

/// Which fields a listing returns (`stateonly`, `flagonly`, `roleonly`, `nidonly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Projection {
    #[default]
    All,
    State,
    Flag,
    Role,
    Nid,
}

#[derive(Debug, Clone, Default)]
pub struct ComponentFilter {
    pub ids: Vec<String>,
    pub types: OneOf,
    pub states: OneOf,
    pub flags: OneOf,
    pub roles: OneOf,
    pub subroles: OneOf,
    pub arches: OneOf,
    pub classes: OneOf,
    pub subtypes: Vec<String>,
    pub software_status: Vec<String>,
    pub enabled: Option<bool>,
    pub locked: Option<bool>,
    pub reservation_disabled: Option<bool>,
    pub nids: Vec<i64>,
    pub nid_start: Vec<i64>,
    pub nid_end: Vec<i64>,
    pub groups: Vec<String>,
    /// Partition names (lowercased), or `NULL` for components in none; ORed.
    pub partitions: Vec<String>,
    pub projection: Projection,
}

fn ints(q: &QueryParams, name: &str) -> Result<Vec<i64>, ApiError> {
    q.all(name)
        .into_iter()
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request("bad query param: a required argument was not an integer")
                    .context(format!("{name}={v:?}"))
            })
        })
        .collect()
}

fn opt_bool(q: &QueryParams, name: &str) -> Result<Option<bool>, ApiError> {
    match q.first(name) {
        None => Ok(None),
        Some(v) => parse_bool(v).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "bad query param: a required argument did not match any valid input",
            )
            .context(format!("{name}={v:?}"))
        }),
    }
}

/// Group and partition labels: lowercase `[-a-z0-9:._]+`, as SMD requires.
pub fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-:._".contains(&b))
}

/// Every value of query parameter `name` as an xname (400 naming a bad one).
pub(crate) fn xname_params(q: &QueryParams, name: &str) -> Result<Vec<Xname>, ApiError> {
    q.all(name)
        .into_iter()
        .map(|v| {
            Xname::parse(v).map_err(|_| {
                ApiError::bad_request("bad query param: Argument was not a valid xname ID")
                    .context(format!("{name}={v:?}"))
            })
        })
        .collect()
}

/// Every `type` query value as an HMS type (400 naming a bad one).
pub(crate) fn type_params(q: &QueryParams) -> Result<Vec<HmsType>, ApiError> {
    q.all("type")
        .into_iter()
        .map(|v| {
            v.parse::<HmsType>().map_err(|_| {
                ApiError::bad_request("bad query param: Argument was not a valid HMS Type")
                    .context(format!("type={v:?}"))
            })
        })
        .collect()
}

/// The one value of a filter, as an index value: `None` when there are none or several.
pub(crate) fn single<T: ToString>(vals: &[T]) -> Option<String> {
    match vals {
        [one] => Some(one.to_string()).filter(|v| !v.is_empty()),
        _ => None,
    }
}

/// Xnames as record ids.
pub(crate) fn ids(xnames: &[Xname]) -> Vec<String> {
    xnames.iter().map(Xname::to_string).collect()
}

impl ComponentFilter {
    /// Components of type `t`, every field.
    pub fn of_type(t: HmsType) -> Self {
        Self {
            types: OneOf {
                include: vec![t.to_string()],
                exclude: Vec::new(),
            },
            ..Self::default()
        }
    }

    pub fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        let ids = ids(&xname_params(q, "id")?);
        let mut groups = Vec::new();
        for g in q.all("group") {
            let g = g.to_ascii_lowercase();
            if !valid_label(&g) {
                return Err(ApiError::bad_request("bad query param: no such group")
                    .context(format!("group={g:?}")));
            }
            groups.push(g);
        }
        let mut partitions = Vec::new();
        for given in q.all("partition") {
            // `NULL` is "in no partition"; other values are labels, lowercased.
            let p = if given == "NULL" {
                given.to_string()
            } else {
                given.to_ascii_lowercase()
            };
            if p != "NULL" && !valid_label(&p) {
                return Err(ApiError::bad_request("bad query param: no such partition")
                    .context(format!("partition={given:?}")));
            }
            partitions.push(p);
        }
        let projection = if opt_bool(q, "stateonly")? == Some(true) {
            Projection::State
        } else if opt_bool(q, "flagonly")? == Some(true) {
            Projection::Flag
        } else if opt_bool(q, "roleonly")? == Some(true) {
            Projection::Role
        } else if opt_bool(q, "nidonly")? == Some(true) {
            Projection::Nid
        } else {
            Projection::All
        };
        let mut flags = OneOf::default();
        for v in q.all("flag") {
            // SMD accepts `warn` as an alias of Warning.
            let (neg, raw) = v.strip_prefix('!').map_or((false, v), |r| (true, r));
            let raw = if raw.eq_ignore_ascii_case("warn") {
                "Warning"
            } else {
                raw
            };
            let canon = raw.parse::<Flag>().map_err(|_| {
                ApiError::bad_request("bad query param: Argument was not a valid HMS Flag")
                    .context(format!("flag={v:?}"))
            })?;
            if neg {
                flags.exclude.push(canon.to_string());
            } else {
                flags.include.push(canon.to_string());
            }
        }
        Ok(ComponentFilter {
            ids,
            types: OneOf::parse::<HmsType>(q, "type", "HMS Type")?,
            states: OneOf::parse::<State>(q, "state", "HMS State")?,
            flags,
            roles: OneOf::parse::<Role>(q, "role", "HMS Role")?,
            subroles: OneOf::parse::<SubRole>(q, "subrole", "HMS SubRole")?,
            arches: OneOf::parse::<Arch>(q, "arch", "HMS Arch")?,
            classes: OneOf::parse::<Class>(q, "class", "HMS Class")?,
            subtypes: q.all("subtype").into_iter().map(String::from).collect(),
            software_status: q
                .all("softwarestatus")
                .into_iter()
                .map(String::from)
                .collect(),
            enabled: opt_bool(q, "enabled")?,
            locked: opt_bool(q, "locked")?,
            reservation_disabled: opt_bool(q, "reservation_disabled")?,
            nids: ints(q, "nid")?,
            nid_start: ints(q, "nid_start")?,
            nid_end: ints(q, "nid_end")?,
            groups,
            partitions,
            projection,
        })
    }

    fn nid_matches(&self, nid: Option<i64>) -> bool {
        let ranged = !self.nid_start.is_empty() || !self.nid_end.is_empty();
        if !ranged {
            return self.nids.is_empty() || nid.is_some_and(|n| self.nids.contains(&n));
        }
        let Some(n) = nid else { return false };
        if self.nids.contains(&n) {
            return true;
        }
        // Starts pair with ends by position; unpaired bounds stand alone. Ranges are ORed.
        let pairs = self.nid_start.len().max(self.nid_end.len());
        (0..pairs).any(|i| {
            let lo = self.nid_start.get(i).copied();
            let hi = self.nid_end.get(i).copied();
            lo.is_none_or(|lo| n >= lo) && hi.is_none_or(|hi| n <= hi)
        })
    }

    /// Everything but ids, groups and partitions, which select candidates around this (see
    /// `Inventory::list_components`).
    pub fn matches(&self, c: &Component) -> bool {
        (self.ids.is_empty() || self.ids.contains(&c.id))
            && self.types.matches(&c.r#type)
            && self.states.matches(&c.state)
            && self.flags.matches(&c.flag)
            && self.roles.matches(&c.role)
            && self.subroles.matches(&c.sub_role)
            && self.arches.matches(&c.arch)
            && self.classes.matches(&c.class)
            && (self.subtypes.is_empty() || self.subtypes.contains(&c.subtype))
            && (self.software_status.is_empty()
                || self.software_status.contains(&c.software_status))
            && self.enabled.is_none_or(|e| c.enabled.unwrap_or(true) == e)
            && self.locked.is_none_or(|l| c.locked == l)
            && self
                .reservation_disabled
                .is_none_or(|r| c.reservation_disabled == r)
            && self.nid_matches(c.nid)
    }

    pub fn project(&self, c: Component) -> Component {
        let base = Component {
            id: c.id.clone(),
            r#type: c.r#type.clone(),
            ..Default::default()
        };
        match self.projection {
            Projection::All => c,
            Projection::State => Component {
                state: c.state,
                flag: c.flag,
                ..base
            },
            Projection::Flag => Component {
                flag: c.flag,
                ..base
            },
            Projection::Role => Component {
                role: c.role,
                sub_role: c.sub_role,
                ..base
            },
            Projection::Nid => Component { nid: c.nid, ..base },
        }
    }
}

/// Values of a free-text parameter, matched case-insensitively (`fqdn`, `uuid`, ...).
fn any_of(q: &QueryParams, name: &str) -> Vec<String> {
    q.all(name).into_iter().map(String::from).collect()
}

fn matches_any(vals: &[String], v: &str) -> bool {
    vals.is_empty() || vals.iter().any(|x| x.eq_ignore_ascii_case(v))
}

/// The `id` and `type` parameters of the Redfish and ComponentEndpoint listings: they pick
/// the candidate records (by id, else by the type index), and the type is checked again on each.
#[derive(Debug, Clone, Default)]
pub struct ByIdAndType {
    pub ids: Vec<Xname>,
    pub types: Vec<HmsType>,
}

impl ByIdAndType {
    fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self {
            ids: xname_params(q, "id")?,
            types: type_params(q)?,
        })
    }

    /// No types given, or the stored `t` is one of them.
    fn type_matches(&self, t: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|x| x.as_str() == t)
    }
}

/// `GET /Inventory/RedfishEndpoints` filters: `id`, `type`, `fqdn`, `uuid`, `macaddr`,
/// `ipaddress`, `laststatus`.
#[derive(Debug, Clone, Default)]
pub struct EndpointFilter {
    pub by: ByIdAndType,
    pub fqdns: Vec<String>,
    pub uuids: Vec<String>,
    /// Canonical MACs (a value that is not a MAC is kept lowercased and matches nothing
    /// stored, as in SMD).
    pub macs: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub last_status: Vec<String>,
}

impl EndpointFilter {
    pub fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self {
            by: ByIdAndType::parse(q)?,
            fqdns: any_of(q, "fqdn"),
            uuids: any_of(q, "uuid"),
            macs: q
                .all("macaddr")
                .into_iter()
                .map(|m| {
                    Mac::parse(m)
                        .map(|m| m.to_string())
                        .unwrap_or_else(|_| m.to_ascii_lowercase())
                })
                .collect(),
            ip_addresses: any_of(q, "ipaddress"),
            last_status: any_of(q, "laststatus"),
        })
    }

    /// Everything but `ids`, which select candidates before this runs.
    pub fn matches(&self, e: &skyport_wire::RedfishEndpoint) -> bool {
        self.by.type_matches(&e.r#type)
            && matches_any(&self.fqdns, &e.fqdn)
            && matches_any(&self.uuids, &e.uuid)
            && (self.macs.is_empty() || self.macs.contains(&e.mac_addr))
            && matches_any(&self.ip_addresses, &e.ip_address)
            && matches_any(&self.last_status, &e.discovery_info.last_discovery_status)
    }
}

/// `GET /Inventory/ComponentEndpoints` filters: `id`, `redfish_ep`, `type`, `redfish_type`.
#[derive(Debug, Clone, Default)]
pub struct ComponentEndpointFilter {
    pub by: ByIdAndType,
    /// The Redfish endpoints (BMCs) the ComponentEndpoints are under.
    pub endpoints: Vec<Xname>,
    pub redfish_types: Vec<String>,
}

impl ComponentEndpointFilter {
    /// ComponentEndpoints of components of type `t`.
    pub fn of_type(t: HmsType) -> Self {
        Self {
            by: ByIdAndType {
                ids: Vec::new(),
                types: vec![t],
            },
            ..Self::default()
        }
    }

    pub fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self {
            by: ByIdAndType::parse(q)?,
            endpoints: xname_params(q, "redfish_ep")?,
            redfish_types: any_of(q, "redfish_type"),
        })
    }

    /// Everything but `ids`, which select candidates before this runs.
    pub fn matches(&self, ce: &skyport_wire::ComponentEndpoint) -> bool {
        (self.endpoints.is_empty()
            || self
                .endpoints
                .iter()
                .any(|x| x.as_str() == ce.redfish_endpoint_id))
            && self.by.type_matches(&ce.r#type)
            && matches_any(&self.redfish_types, &ce.redfish_type)
    }
}

/// `GET /groups` filters: `group` labels and `tag`s.
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    pub labels: Vec<String>,
    pub tags: Vec<String>,
}

impl GroupFilter {
    pub fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        let labels = |name: &str, what: &str| {
            q.all(name)
                .into_iter()
                .map(|v| crate::groups::label(v, what))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            labels: labels("group", "group label")?,
            tags: labels("tag", "tag")?,
        })
    }

    /// Everything but `labels`, which select candidates before this runs.
    pub fn matches(&self, g: &skyport_wire::Group) -> bool {
        self.tags.is_empty() || g.tags.iter().any(|t| self.tags.contains(t))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn node(id: &str, nid: i64) -> Component {
        Component {
            id: id.into(),
            r#type: "Node".into(),
            state: "Ready".into(),
            flag: "OK".into(),
            nid: Some(nid),
            role: "Compute".into(),
            ..Default::default()
        }
    }

    #[test]
    fn nid_ranges_pair_by_position() {
        let f = ComponentFilter::parse(&QueryParams::parse(
            "nid_start=10&nid_end=20&nid_start=100&nid=50",
        ))
        .unwrap();
        assert!(f.matches(&node("x1c0s0b0n0", 15)));
        assert!(f.matches(&node("x1c0s0b0n0", 50)));
        assert!(
            f.matches(&node("x1c0s0b0n0", 1000)),
            "unpaired start is open-ended"
        );
        assert!(!f.matches(&node("x1c0s0b0n0", 30)));
    }

    proptest::proptest! {
        // Query strings come from anyone: parsing and matching never panic.
        #[test]
        fn any_query_string_is_handled(q in "[a-z_=&!%0-9A-Z.,-]{0,60}|\\PC{0,40}") {
            if let Ok(f) = ComponentFilter::parse(&QueryParams::parse(&q)) {
                let _ = f.matches(&node("x1c0s0b0n0", 1));
            }
        }
    }

    #[test]
    fn values_are_validated_and_negatable() {
        let e = ComponentFilter::parse(&QueryParams::parse("type=Bogus")).unwrap_err();
        assert!(e.to_string().contains("not a valid HMS Type"));
        assert!(ComponentFilter::parse(&QueryParams::parse("state=bogus")).is_err());
        assert!(ComponentFilter::parse(&QueryParams::parse("nid=abc")).is_err());
        assert!(ComponentFilter::parse(&QueryParams::parse("enabled=maybe")).is_err());
        let f = ComponentFilter::parse(&QueryParams::parse("TYPE=node&state=!off")).unwrap();
        assert!(f.matches(&node("x1c0s0b0n0", 1)));
        let f = ComponentFilter::parse(&QueryParams::parse("state=!ready")).unwrap();
        assert!(!f.matches(&node("x1c0s0b0n0", 1)));
    }
}
