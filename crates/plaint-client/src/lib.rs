//! How programs call plaint's services.
//!
//! Every call but health presents a credential as `authorization: Bearer <token>`:
//! an API key (`plaint-ctl keys …`) or a JWT from the organisation's identity
//! provider. [`ClientSettings`] finds it in a file or the environment, and
//! [`authed`] wraps a channel so that every request carries it.
//!
//! An `https://` URL is called over TLS: the services' certificates are
//! verified against a CA file (or the system's roots), and a client
//! certificate is presented where the services ask for one (mutual TLS).
//! [`ClientSettings::connect`] does all of it.

mod bearer;
mod settings;

pub use bearer::{Authed, Bearer, authed};
pub use settings::{
    API_KEY_ENV, ClientSettings, DEFAULT_API_KEY_FILE, DEFAULT_TLS_CA_FILE,
    DEFAULT_TLS_CLIENT_CERT_FILE, DEFAULT_TLS_CLIENT_KEY_FILE,
};
