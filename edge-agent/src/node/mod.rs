//! Serving the site's nodes from the agent's own copy, so they boot with the cloud gone: the
//! replica of the site's boot data ([`replica`]), the verified image cache ([`cache`]) and how
//! its bytes are sent ([`imageserve`]), the node-facing routes ([`serve`]), DHCP ([`dhcp`]) and
//! TFTP ([`tftp`]) on the provisioning network, the service that wires them with their
//! supervised loops ([`site`]), and the operator console over the same copy ([`console`]).

pub mod cache;
pub mod console;
pub mod dhcp;
pub mod imageserve;
pub mod recorder;
pub mod replica;
pub mod serve;
pub mod site;
pub mod tftp;
