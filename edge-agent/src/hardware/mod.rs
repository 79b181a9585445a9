//! Acting on the site's hardware with the BMC credentials only this agent holds: where each
//! node's BMC is ([`directory`], filled by discovery), running an action on many nodes,
//! staggered by chassis ([`exec`]), and the site's end of the cloud's command channel, with its
//! durable journal ([`jobs`]). An admin on site runs the same actions without the cloud
//! (`skyport-edge power`, [`crate::Agent::act`]).

pub mod directory;
pub mod exec;
pub mod jobs;
