//! How programs call plaint's services.
//!
//! Every call but health presents a credential as `authorization: Bearer <token>`:
//! an API key (`plaint-ctl keys …`) or a JWT from the organisation's identity
//! provider. [`ClientSettings`] finds it in a file or the environment, and
//! [`authed`] wraps a channel so that every request carries it.

mod bearer;
mod settings;

pub use bearer::{Authed, Bearer, authed};
pub use settings::{API_KEY_ENV, ClientSettings, DEFAULT_API_KEY_FILE};
