//! The console's routes, by page. Each reads through the services' typed operations, checks the
//! viewer ([`crate::Console::viewer`], [`crate::Console::actor`]) and hands a view to
//! [`crate::pages`].

pub(crate) mod boots;
pub(crate) mod discovery;
pub(crate) mod node;
pub(crate) mod signin;
pub(crate) mod sites;
