//! The intake service binary (see [`plaint_runtime::binary`]).

#[global_allocator]
static ALLOCATOR: plaint_runtime::allocator::Allocator = plaint_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plaint_runtime::binary::main::<plaint_intake::Application>().await
}
