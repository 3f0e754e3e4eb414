//! W3C trace context in message headers, so one trace follows a complaint from
//! intake through the log and the router to the projection.

/// The W3C header name.
pub const TRACEPARENT: &str = "traceparent";

/// A `traceparent` value: version 00, a trace id, a span id, sampled.
pub fn new_traceparent(trace_id: u128, span_id: u64) -> String {
    format!("00-{trace_id:032x}-{span_id:016x}-01")
}

/// The trace id of a well-formed `traceparent`, if it is one.
pub fn trace_id(traceparent: &str) -> Option<u128> {
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)
}

/// A child context: same trace, a new span.
pub fn child_of(traceparent: Option<&str>, span_id: u64, fallback_trace: u128) -> String {
    let trace = traceparent.and_then(trace_id).unwrap_or(fallback_trace);
    new_traceparent(trace, span_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let parent = new_traceparent(0xabc, 1);
        let child = child_of(Some(&parent), 2, 0xdef);
        assert_eq!(trace_id(&child), Some(0xabc));
        assert_ne!(child, parent);
    }

    #[test]
    fn malformed_trace_contexts_are_replaced() {
        assert_eq!(trace_id("garbage"), None);
        assert_eq!(trace_id(&child_of(Some("00-zz"), 2, 0xdef)), Some(0xdef));
    }
}
