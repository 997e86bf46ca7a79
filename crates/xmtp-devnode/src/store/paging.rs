//! xmtp-node-go's paging rules, shared by group messages, welcomes and commit logs.
//!
//! Unspecified direction means descending; a limit of 0 or above 100 means 100; ascending
//! returns ids above the cursor, descending ids below it (everything when the cursor is 0);
//! the returned cursor is the last id only when the page is full, else 0.

use xmtp_proto::mls_api::{PagingInfo, SortDirection};

/// Largest (and default) page size.
pub const MAX_PAGE: usize = 100;

/// Selects one page from `items`, which must be sorted by ascending id.
pub fn page<T: Clone>(
    items: &[T],
    id: impl Fn(&T) -> u64,
    paging: Option<&PagingInfo>,
) -> (Vec<T>, PagingInfo) {
    let paging = paging.cloned().unwrap_or_default();
    let limit = match paging.limit as usize {
        0 => MAX_PAGE,
        n => n.min(MAX_PAGE),
    };
    let ascending = paging.direction == SortDirection::Ascending as i32;
    let cursor = paging.id_cursor;
    let out: Vec<T> = if ascending {
        let start = items.partition_point(|m| id(m) <= cursor);
        items[start..].iter().take(limit).cloned().collect()
    } else {
        let end = if cursor == 0 {
            items.len()
        } else {
            items.partition_point(|m| id(m) < cursor)
        };
        items[..end].iter().rev().take(limit).cloned().collect()
    };
    let next = if out.len() == limit {
        out.last().map(&id).unwrap_or(0)
    } else {
        0
    };
    let direction = if ascending {
        SortDirection::Ascending
    } else {
        SortDirection::Descending
    };
    let info = PagingInfo {
        direction: direction as i32,
        limit: limit as u32,
        id_cursor: next,
    };
    (out, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(direction: SortDirection, limit: u32, id_cursor: u64) -> Option<PagingInfo> {
        Some(PagingInfo {
            direction: direction as i32,
            limit,
            id_cursor,
        })
    }

    #[test]
    fn ascending_pages_after_the_cursor() {
        let ids: Vec<u64> = (1..=250).collect();
        let (p, info) = page(
            &ids,
            |x| *x,
            paging(SortDirection::Ascending, 0, 0).as_ref(),
        );
        assert_eq!(
            (p.len(), p[0], info.id_cursor, info.limit),
            (100, 1, 100, 100)
        );
        let (p, info) = page(
            &ids,
            |x| *x,
            paging(SortDirection::Ascending, 100, 200).as_ref(),
        );
        assert_eq!((p.len(), p[0], info.id_cursor), (50, 201, 0));
    }

    #[test]
    fn unspecified_means_descending_and_big_limits_are_capped() {
        let ids: Vec<u64> = vec![2, 4, 6, 8];
        let (p, info) = page(
            &ids,
            |x| *x,
            paging(SortDirection::Unspecified, 500, 0).as_ref(),
        );
        assert_eq!(p, vec![8, 6, 4, 2]);
        assert_eq!(
            (info.limit, info.id_cursor, info.direction),
            (100, 0, SortDirection::Descending as i32)
        );
        let (p, info) = page(
            &ids,
            |x| *x,
            paging(SortDirection::Descending, 2, 7).as_ref(),
        );
        assert_eq!((p, info.id_cursor), (vec![6, 4], 4));
        let (p, _) = page(&ids, |x| *x, None);
        assert_eq!(p, vec![8, 6, 4, 2]);
    }
}
