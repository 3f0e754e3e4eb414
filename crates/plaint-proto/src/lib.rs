//! Wire contracts: the generated protobuf types and gRPC stubs, the descriptor
//! set for server reflection, and the conversions between wire and domain types
//! (the orphan rule puts them here).

pub mod convert;
pub mod envelope;
pub mod personal;

pub use convert::{FromWire, ToWire};
pub use envelope::{DecodeError, decode_envelope, encode_envelope};

/// Generated code, in the module tree of the proto packages (`plaint.<api>.v1`).
#[allow(
    clippy::all,
    missing_docs,
    unreachable_pub,
    missing_debug_implementations
)]
pub mod plaint {
    /// API keys and the audit trail.
    pub mod access {
        /// Version 1.
        pub mod v1 {
            tonic::include_proto!("plaint.access.v1");
        }
    }
    /// Event payloads.
    pub mod events {
        /// Version 1.
        pub mod v1 {
            tonic::include_proto!("plaint.events.v1");
        }
    }
    /// The intake service's API.
    pub mod intake {
        /// Version 1.
        pub mod v1 {
            tonic::include_proto!("plaint.intake.v1");
        }
    }
    /// The router's query and admin APIs.
    pub mod router {
        /// Version 1.
        pub mod v1 {
            tonic::include_proto!("plaint.router.v1");
        }
    }
}

pub use plaint::access::v1 as access;
pub use plaint::events::v1 as events;
pub use plaint::intake::v1 as intake;
pub use plaint::router::v1 as router;

/// The encoded descriptor set of every proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("plaint_descriptor");
