// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// A minimal aggregator with Multicall3's `aggregate3` ABI (same selector, same encoding), so
/// herald's watch evaluator can be tested against it on anvil. Production chains use the
/// canonical Multicall3 deployment at 0xcA11bde05977b3631167028862bE2a173976CA11.
contract Aggregator {
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    /// Calls every target in order; a failing call reverts the whole batch unless it allows
    /// failure, in which case its result carries `success = false` and the revert data.
    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData) {
        uint256 length = calls.length;
        returnData = new Result[](length);
        for (uint256 i = 0; i < length; i++) {
            Call3 calldata call = calls[i];
            (bool success, bytes memory data) = call.target.call(call.callData);
            if (!success && !call.allowFailure) {
                revert("Aggregator: call failed");
            }
            returnData[i] = Result(success, data);
        }
    }
}
