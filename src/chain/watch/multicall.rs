//! Multicall3's `aggregate3`: many view calls in one `eth_call`, each allowed to fail on its
//! own. The ABI is Multicall3's (selector `0x82ad56cb`), so the canonical deployment at
//! [`CANONICAL_ADDRESS`] on most chains and the test aggregator in `testdata/chain/watch` both
//! answer it.

use alloy::primitives::{address, Address, Bytes};
use alloy::sol_types::SolCall;

/// Multicall3's address on nearly every EVM chain (deterministic deployment).
pub const CANONICAL_ADDRESS: Address = address!("cA11bde05977b3631167028862bE2a173976CA11");

alloy::sol! {
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Call3Result {
        bool success;
        bytes returnData;
    }

    function aggregate3(Call3[] calls) external payable returns (Call3Result[] returnData);
}

/// Calldata of one `aggregate3` over `calls` (target, calldata), each allowed to fail.
pub fn encode(calls: impl IntoIterator<Item = (Address, Vec<u8>)>) -> Vec<u8> {
    let calls = calls
        .into_iter()
        .map(|(target, data)| Call3 {
            target,
            allowFailure: true,
            callData: Bytes::from(data),
        })
        .collect();
    aggregate3Call { calls }.abi_encode()
}

/// Decodes an `aggregate3` answer: per call, its return data or `None` when it failed.
pub fn decode(data: &[u8]) -> Result<Vec<Option<Bytes>>, alloy::sol_types::Error> {
    let results = aggregate3Call::abi_decode_returns(data)?;
    Ok(results
        .into_iter()
        .map(|r| r.success.then_some(r.returnData))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_is_multicall3s() {
        assert_eq!(aggregate3Call::SELECTOR, [0x82, 0xad, 0x56, 0xcb]);
    }
}
