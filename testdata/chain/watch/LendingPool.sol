// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// A stand-in for a lending pool's per-user account view (Aave V3's `getUserAccountData`
/// shape: six uint256, the last one the health factor with 18 decimals). Tests set each
/// user's health factor directly.
contract LendingPool {
    mapping(address => uint256) private healthFactors;

    function setHealthFactor(address user, uint256 healthFactor) external {
        healthFactors[user] = healthFactor;
    }

    /// Sets many users at once (bench setup).
    function setHealthFactors(address[] calldata users, uint256 healthFactor) external {
        for (uint256 i = 0; i < users.length; i++) {
            healthFactors[users[i]] = healthFactor;
        }
    }

    function getUserAccountData(address user)
        external
        view
        returns (
            uint256 totalCollateralBase,
            uint256 totalDebtBase,
            uint256 availableBorrowsBase,
            uint256 currentLiquidationThreshold,
            uint256 ltv,
            uint256 healthFactor
        )
    {
        uint256 hf = healthFactors[user];
        return (1000e8, 500e8, 200e8, 8250, 7500, hf);
    }
}
