//! The in-memory inventory of one event: how many seats (or which seats) are free, held or
//! sold, which live booking holds them, and how many each account holds or bought. The event
//! actor owns one; every rule about claiming (including the per-account limit), releasing,
//! confirming, admitting and expiring seats lives here so it can be property-tested.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::ids::{BookingId, UserId};
use super::seatmap::{SeatIdx, SeatMap, best_available};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SeatState {
    Free,
    Held,
    Sold,
}

impl SeatState {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatState::Free => "free",
            SeatState::Held => "held",
            SeatState::Sold => "sold",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    Held { expires_at: DateTime<Utc> },
    Confirmed,
}

/// A booking that occupies seats: held or confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBooking {
    pub user: UserId,
    pub quantity: u32,
    /// Seat indexes on a seated event; empty for general admission.
    pub seats: Vec<SeatIdx>,
    pub holding: Holding,
    /// When its ticket was used at the door (confirmed bookings only).
    pub checked_in_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimSpec {
    Quantity(u32),
    Seats(Vec<SeatIdx>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("not enough seats left ({available} available)")]
    SoldOut { available: u32 },
    #[error("some requested seats are not available")]
    SeatsUnavailable(Vec<SeatIdx>),
    #[error("this event has general admission; ask for a quantity")]
    SeatsOnGeneralAdmission,
    #[error("a seat is listed twice")]
    DuplicateSeat,
    #[error("quantity must be at least 1")]
    InvalidQuantity,
    #[error("booking already exists")]
    AlreadyExists,
    #[error("at most {limit} seats per account for this event ({has} held or bought already)")]
    PerUserLimit { limit: u32, has: u32 },
}

/// Why a ticket does not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("no confirmed booking")]
    NotConfirmed,
    #[error("already checked in")]
    AlreadyCheckedIn(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub capacity: u32,
    pub held: u32,
    pub sold: u32,
}

impl Counts {
    pub fn available(&self) -> u32 {
        self.capacity - self.held - self.sold
    }
}

#[derive(Debug, Clone)]
struct SeatPlan {
    map: Arc<SeatMap>,
    /// Copy-on-write so that published snapshots are an `Arc` clone, not a copy.
    states: Arc<Vec<SeatState>>,
    row_free: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Inventory {
    capacity: u32,
    held: u32,
    sold: u32,
    plan: Option<SeatPlan>,
    live: HashMap<BookingId, LiveBooking>,
    expiries: BTreeSet<(DateTime<Utc>, BookingId)>,
    /// Seats each account holds or bought (live bookings only; no entry means none).
    per_user: HashMap<UserId, u32>,
    /// Seats one account may hold and buy; claims beyond it are refused.
    max_per_user: u32,
}

impl Inventory {
    pub fn general(capacity: u32) -> Self {
        Self {
            capacity,
            held: 0,
            sold: 0,
            plan: None,
            live: HashMap::new(),
            expiries: BTreeSet::new(),
            per_user: HashMap::new(),
            max_per_user: u32::MAX,
        }
    }

    pub fn seated(map: Arc<SeatMap>) -> Self {
        let row_free = map.rows().iter().map(|r| r.len).collect();
        let states = Arc::new(vec![SeatState::Free; map.capacity() as usize]);
        Self {
            capacity: map.capacity(),
            held: 0,
            sold: 0,
            plan: Some(SeatPlan { map, states, row_free }),
            live: HashMap::new(),
            expiries: BTreeSet::new(),
            per_user: HashMap::new(),
            max_per_user: u32::MAX,
        }
    }

    /// Sets how many seats one account may hold and buy. Lowering it never takes seats away:
    /// it only refuses later claims.
    pub fn set_max_per_user(&mut self, limit: u32) {
        self.max_per_user = limit.max(1);
    }

    /// Seats `user` holds or bought.
    pub fn seats_of(&self, user: UserId) -> u32 {
        self.per_user.get(&user).copied().unwrap_or(0)
    }

    pub fn counts(&self) -> Counts {
        Counts { capacity: self.capacity, held: self.held, sold: self.sold }
    }

    pub fn is_seated(&self) -> bool {
        self.plan.is_some()
    }

    pub fn seat_map(&self) -> Option<&Arc<SeatMap>> {
        self.plan.as_ref().map(|p| &p.map)
    }

    /// A snapshot of every seat's state; cheap unless the actor changes seats while a reader
    /// still holds the previous snapshot.
    pub fn seat_states(&self) -> Option<Arc<Vec<SeatState>>> {
        self.plan.as_ref().map(|p| p.states.clone())
    }

    pub fn get(&self, id: &BookingId) -> Option<&LiveBooking> {
        self.live.get(id)
    }

    pub fn live_bookings(&self) -> usize {
        self.live.len()
    }

    pub fn has_holds(&self) -> bool {
        !self.expiries.is_empty()
    }

    /// Reserves seats for a new held booking. On success the booking is live and its seats
    /// (chosen by best-available for a quantity on a seated event) are returned.
    pub fn claim(
        &mut self,
        id: BookingId,
        user: UserId,
        spec: ClaimSpec,
        expires_at: DateTime<Utc>,
    ) -> Result<&LiveBooking, ClaimError> {
        if self.live.contains_key(&id) {
            return Err(ClaimError::AlreadyExists);
        }
        let available = self.counts().available();
        let (quantity, seats) = match (spec, &self.plan) {
            (ClaimSpec::Quantity(0), _) => return Err(ClaimError::InvalidQuantity),
            (ClaimSpec::Quantity(q), _) if q > available => return Err(ClaimError::SoldOut { available }),
            (ClaimSpec::Quantity(q), None) => (q, Vec::new()),
            (ClaimSpec::Quantity(q), Some(plan)) => {
                let states = &plan.states;
                let seats = best_available(&plan.map, |s| states[s as usize] == SeatState::Free, &plan.row_free, q)
                    .ok_or(ClaimError::SoldOut { available })?;
                (q, seats)
            }
            (ClaimSpec::Seats(_), None) => return Err(ClaimError::SeatsOnGeneralAdmission),
            (ClaimSpec::Seats(seats), Some(plan)) => {
                if seats.is_empty() {
                    return Err(ClaimError::InvalidQuantity);
                }
                let mut sorted = seats.clone();
                sorted.sort_unstable();
                if sorted.windows(2).any(|w| w[0] == w[1]) {
                    return Err(ClaimError::DuplicateSeat);
                }
                let taken: Vec<SeatIdx> =
                    seats.iter().copied().filter(|&s| plan.states[s as usize] != SeatState::Free).collect();
                if !taken.is_empty() {
                    return Err(ClaimError::SeatsUnavailable(taken));
                }
                (seats.len() as u32, seats)
            }
        };
        // After availability: on a sold-out event "sold out" is the answer that matters.
        let has = self.seats_of(user);
        if has.saturating_add(quantity) > self.max_per_user {
            return Err(ClaimError::PerUserLimit { limit: self.max_per_user, has });
        }
        let booking = LiveBooking { user, quantity, seats, holding: Holding::Held { expires_at }, checked_in_at: None };
        self.occupy(id, booking);
        Ok(&self.live[&id])
    }

    /// Puts back a booking exactly as it was (loading from the store, or undoing a release
    /// whose write failed). Fails if its seats are no longer free.
    pub fn restore(&mut self, id: BookingId, booking: LiveBooking) -> Result<(), ClaimError> {
        if self.live.contains_key(&id) {
            return Err(ClaimError::AlreadyExists);
        }
        if booking.quantity == 0 {
            return Err(ClaimError::InvalidQuantity);
        }
        match &self.plan {
            None if !booking.seats.is_empty() => return Err(ClaimError::SeatsOnGeneralAdmission),
            None if booking.quantity > self.counts().available() => {
                return Err(ClaimError::SoldOut { available: self.counts().available() });
            }
            Some(plan) => {
                let mut sorted = booking.seats.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != booking.seats.len() || booking.seats.len() as u32 != booking.quantity {
                    return Err(ClaimError::DuplicateSeat);
                }
                let taken: Vec<SeatIdx> = booking
                    .seats
                    .iter()
                    .copied()
                    .filter(|&s| plan.states.get(s as usize) != Some(&SeatState::Free))
                    .collect();
                if !taken.is_empty() {
                    return Err(ClaimError::SeatsUnavailable(taken));
                }
            }
            None => {}
        }
        self.occupy(id, booking);
        Ok(())
    }

    /// Frees a live booking's seats (cancel, expiry, failed payment, undo of a claim).
    pub fn release(&mut self, id: &BookingId) -> Option<LiveBooking> {
        let booking = self.live.remove(id)?;
        match booking.holding {
            Holding::Held { expires_at } => {
                self.expiries.remove(&(expires_at, *id));
                self.held -= booking.quantity;
            }
            Holding::Confirmed => self.sold -= booking.quantity,
        }
        self.set_seats(&booking.seats, SeatState::Free);
        if let std::collections::hash_map::Entry::Occupied(mut e) = self.per_user.entry(booking.user) {
            *e.get_mut() -= booking.quantity;
            if *e.get() == 0 {
                e.remove();
            }
        }
        Some(booking)
    }

    /// Admits a confirmed booking's ticket once.
    pub fn check_in(&mut self, id: &BookingId, at: DateTime<Utc>) -> Result<(), AdmitError> {
        let booking = self.live.get_mut(id).ok_or(AdmitError::NotConfirmed)?;
        match (booking.holding, booking.checked_in_at) {
            (Holding::Held { .. }, _) => Err(AdmitError::NotConfirmed),
            (Holding::Confirmed, Some(earlier)) => Err(AdmitError::AlreadyCheckedIn(earlier)),
            (Holding::Confirmed, None) => {
                booking.checked_in_at = Some(at);
                Ok(())
            }
        }
    }

    /// Held → confirmed (sold). Returns the previous expiry for an undo.
    pub fn confirm(&mut self, id: &BookingId) -> Option<DateTime<Utc>> {
        let booking = self.live.get_mut(id)?;
        let Holding::Held { expires_at } = booking.holding else { return None };
        booking.holding = Holding::Confirmed;
        let (quantity, seats) = (booking.quantity, booking.seats.clone());
        self.expiries.remove(&(expires_at, *id));
        self.held -= quantity;
        self.sold += quantity;
        self.set_seats(&seats, SeatState::Sold);
        Some(expires_at)
    }

    /// Confirmed → held again with the given expiry (undo of a confirmation whose write failed).
    pub fn unconfirm(&mut self, id: &BookingId, expires_at: DateTime<Utc>) -> bool {
        let Some(booking) = self.live.get_mut(id) else { return false };
        if booking.holding != Holding::Confirmed {
            return false;
        }
        booking.holding = Holding::Held { expires_at };
        let (quantity, seats) = (booking.quantity, booking.seats.clone());
        self.expiries.insert((expires_at, *id));
        self.sold -= quantity;
        self.held += quantity;
        self.set_seats(&seats, SeatState::Held);
        true
    }

    /// Held bookings whose hold ran out at or before `now`, oldest first.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<BookingId> {
        self.expiries.iter().take_while(|(at, _)| *at <= now).map(|(_, id)| *id).collect()
    }

    /// Changes a general-admission capacity; it may not drop below seats held or sold.
    pub fn set_capacity(&mut self, capacity: u32) -> Result<(), u32> {
        let in_use = self.held + self.sold;
        if self.plan.is_some() || capacity < in_use {
            return Err(in_use);
        }
        self.capacity = capacity;
        Ok(())
    }

    fn occupy(&mut self, id: BookingId, booking: LiveBooking) {
        *self.per_user.entry(booking.user).or_default() += booking.quantity;
        match booking.holding {
            Holding::Held { expires_at } => {
                self.expiries.insert((expires_at, id));
                self.held += booking.quantity;
                self.set_seats(&booking.seats, SeatState::Held);
            }
            Holding::Confirmed => {
                self.sold += booking.quantity;
                self.set_seats(&booking.seats, SeatState::Sold);
            }
        }
        self.live.insert(id, booking);
    }

    fn set_seats(&mut self, seats: &[SeatIdx], to: SeatState) {
        let Some(plan) = self.plan.as_mut() else { return };
        let states = Arc::make_mut(&mut plan.states);
        for &s in seats {
            let row = plan.map.row_of(s);
            let from = std::mem::replace(&mut states[s as usize], to);
            match (from == SeatState::Free, to == SeatState::Free) {
                (true, false) => plan.row_free[row] -= 1,
                (false, true) => plan.row_free[row] += 1,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::seatmap::{RowSpec, SeatMapSpec, SectionSpec};
    use chrono::Duration;
    use proptest::prelude::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn small_map() -> Arc<SeatMap> {
        let rows = (0..4).map(|i| RowSpec { label: format!("R{i}"), seats: 5 }).collect();
        Arc::new(SeatMap::parse(SeatMapSpec { sections: vec![SectionSpec { name: "S".into(), rows }] }).unwrap())
    }

    #[test]
    fn general_admission_sells_out_exactly() {
        let mut inv = Inventory::general(3);
        let u = UserId::new();
        assert!(inv.claim(BookingId::new(), u, ClaimSpec::Quantity(2), t(60)).is_ok());
        assert_eq!(
            inv.claim(BookingId::new(), u, ClaimSpec::Quantity(2), t(60)).unwrap_err(),
            ClaimError::SoldOut { available: 1 }
        );
        assert!(inv.claim(BookingId::new(), u, ClaimSpec::Quantity(1), t(60)).is_ok());
        assert_eq!(inv.counts().available(), 0);
        assert_eq!(
            inv.claim(BookingId::new(), u, ClaimSpec::Seats(vec![0]), t(60)).unwrap_err(),
            ClaimError::SeatsOnGeneralAdmission
        );
    }

    #[test]
    fn expiry_confirm_and_capacity() {
        let mut inv = Inventory::general(10);
        let u = UserId::new();
        let (a, b) = (BookingId::new(), BookingId::new());
        inv.claim(a, u, ClaimSpec::Quantity(3), t(10)).unwrap();
        inv.claim(b, u, ClaimSpec::Quantity(4), t(20)).unwrap();
        assert_eq!(inv.due(t(9)), vec![]);
        assert_eq!(inv.due(t(10)), vec![a]);
        assert_eq!(inv.confirm(&b), Some(t(20)));
        assert_eq!(inv.due(t(30)), vec![a]);
        assert_eq!(inv.set_capacity(6), Err(7));
        assert!(inv.set_capacity(7).is_ok());
        inv.release(&a).unwrap();
        assert_eq!(inv.counts(), Counts { capacity: 7, held: 0, sold: 4 });
        assert!(inv.unconfirm(&b, t(20)));
        assert_eq!(inv.due(t(30)), vec![b]);
    }

    #[test]
    fn seated_claims_refuse_taken_and_duplicate_seats() {
        let mut inv = Inventory::seated(small_map());
        let u = UserId::new();
        inv.claim(BookingId::new(), u, ClaimSpec::Seats(vec![1, 2]), t(60)).unwrap();
        assert_eq!(
            inv.claim(BookingId::new(), u, ClaimSpec::Seats(vec![2, 3]), t(60)).unwrap_err(),
            ClaimError::SeatsUnavailable(vec![2])
        );
        assert_eq!(
            inv.claim(BookingId::new(), u, ClaimSpec::Seats(vec![4, 4]), t(60)).unwrap_err(),
            ClaimError::DuplicateSeat
        );
        // Row R0 has seats 0, 3, 4 free: the best pair is 3-4.
        let b = inv.claim(BookingId::new(), u, ClaimSpec::Quantity(2), t(60)).unwrap();
        assert_eq!(b.seats, vec![3, 4]);
    }

    #[test]
    fn one_account_holds_and_buys_at_most_its_limit() {
        let mut inv = Inventory::general(100);
        inv.set_max_per_user(5);
        let (ann, bob) = (UserId::new(), UserId::new());
        let a = BookingId::new();
        inv.claim(a, ann, ClaimSpec::Quantity(3), t(60)).unwrap();
        inv.confirm(&a).unwrap();
        assert_eq!(
            inv.claim(BookingId::new(), ann, ClaimSpec::Quantity(3), t(60)).unwrap_err(),
            ClaimError::PerUserLimit { limit: 5, has: 3 }
        );
        let b = BookingId::new();
        inv.claim(b, ann, ClaimSpec::Quantity(2), t(60)).unwrap();
        assert_eq!(inv.seats_of(ann), 5);
        inv.claim(BookingId::new(), bob, ClaimSpec::Quantity(5), t(60)).unwrap();
        // Seats given back count no more.
        inv.release(&b).unwrap();
        assert_eq!(inv.seats_of(ann), 3);
        inv.claim(BookingId::new(), ann, ClaimSpec::Quantity(2), t(60)).unwrap();
    }

    #[test]
    fn a_ticket_admits_once_and_only_when_bought() {
        let mut inv = Inventory::general(10);
        let (held, bought) = (BookingId::new(), BookingId::new());
        inv.claim(held, UserId::new(), ClaimSpec::Quantity(1), t(60)).unwrap();
        inv.claim(bought, UserId::new(), ClaimSpec::Quantity(1), t(60)).unwrap();
        inv.confirm(&bought).unwrap();
        assert_eq!(inv.check_in(&held, t(1)), Err(AdmitError::NotConfirmed));
        assert_eq!(inv.check_in(&BookingId::new(), t(1)), Err(AdmitError::NotConfirmed));
        assert_eq!(inv.check_in(&bought, t(1)), Ok(()));
        assert_eq!(inv.check_in(&bought, t(2)), Err(AdmitError::AlreadyCheckedIn(t(1))));
        assert_eq!(inv.get(&bought).unwrap().checked_in_at, Some(t(1)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Claim { user: u8, quantity: u32 },
        ClaimSeats { user: u8, seats: Vec<SeatIdx> },
        Release(usize),
        Confirm(usize),
        Expire { advance: i64 },
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                3 => (0u8..4, 0u32..6).prop_map(|(user, quantity)| Op::Claim { user, quantity }),
                3 => (0u8..4, prop::collection::vec(0u32..20, 0..4)).prop_map(|(user, seats)| Op::ClaimSeats { user, seats }),
                2 => any::<usize>().prop_map(Op::Release),
                2 => any::<usize>().prop_map(Op::Confirm),
                1 => (0i64..120).prop_map(|advance| Op::Expire { advance }),
            ],
            0..80,
        )
    }

    /// Checks every invariant: the counters add up, no seat belongs to two bookings, and the
    /// per-seat states agree with the live bookings.
    fn check(inv: &Inventory) {
        let c = inv.counts();
        assert!(c.held + c.sold <= c.capacity);
        let held: u32 =
            inv.live.values().filter(|b| matches!(b.holding, Holding::Held { .. })).map(|b| b.quantity).sum();
        let sold: u32 = inv.live.values().filter(|b| b.holding == Holding::Confirmed).map(|b| b.quantity).sum();
        assert_eq!((held, sold), (c.held, c.sold));
        assert_eq!(inv.expiries.len(), inv.live.values().filter(|b| matches!(b.holding, Holding::Held { .. })).count());
        let mut per_user: HashMap<UserId, u32> = HashMap::new();
        for b in inv.live.values() {
            *per_user.entry(b.user).or_default() += b.quantity;
        }
        assert_eq!(per_user, inv.per_user, "per-account counts disagree with the live bookings");
        if let Some(plan) = &inv.plan {
            let mut owner = vec![None; plan.states.len()];
            for (id, b) in &inv.live {
                assert_eq!(b.seats.len() as u32, b.quantity);
                for &s in &b.seats {
                    assert!(owner[s as usize].replace(*id).is_none(), "seat {s} given twice");
                    let want = if b.holding == Holding::Confirmed { SeatState::Sold } else { SeatState::Held };
                    assert_eq!(plan.states[s as usize], want);
                }
            }
            let free = plan.states.iter().filter(|s| **s == SeatState::Free).count() as u32;
            assert_eq!(free, c.available());
            for (ri, row) in plan.map.rows().iter().enumerate() {
                let f =
                    (row.start..row.start + row.len).filter(|&s| plan.states[s as usize] == SeatState::Free).count();
                assert_eq!(plan.row_free[ri] as usize, f);
            }
        }
    }

    fn run(mut inv: Inventory, ops: Vec<Op>) {
        let mut now = t(0);
        let mut ids: Vec<BookingId> = Vec::new();
        for op in ops {
            let before = inv.counts();
            match op {
                Op::Claim { user, quantity } => {
                    let id = BookingId::new();
                    let r = inv.claim(
                        id,
                        UserId(uuid::Uuid::from_u128(user as u128)),
                        ClaimSpec::Quantity(quantity),
                        now + Duration::seconds(60),
                    );
                    let user = UserId(uuid::Uuid::from_u128(user as u128));
                    match r {
                        Ok(b) => {
                            assert_eq!(b.quantity, quantity);
                            ids.push(id);
                            assert!(inv.seats_of(user) <= inv.max_per_user, "a claim went past the per-user limit");
                        }
                        Err(ClaimError::PerUserLimit { limit, has }) => {
                            assert!(has + quantity > limit);
                            assert_eq!(inv.counts(), before, "a refused claim changed counts");
                        }
                        Err(ClaimError::SoldOut { available }) => assert!(quantity > available || inv.is_seated()),
                        Err(ClaimError::InvalidQuantity) => assert_eq!(quantity, 0),
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
                Op::ClaimSeats { user, seats } => {
                    let id = BookingId::new();
                    let valid: Vec<_> = seats.into_iter().filter(|&s| s < inv.capacity).collect();
                    if inv
                        .claim(
                            id,
                            UserId(uuid::Uuid::from_u128(user as u128)),
                            ClaimSpec::Seats(valid),
                            now + Duration::seconds(60),
                        )
                        .is_ok()
                    {
                        ids.push(id);
                    } else {
                        assert_eq!(inv.counts(), before, "a refused claim changed counts");
                    }
                }
                Op::Release(i) if !ids.is_empty() => {
                    let id = ids[i % ids.len()];
                    if let Some(b) = inv.release(&id) {
                        assert_eq!(inv.counts().available(), before.available() + b.quantity);
                        // Undo must restore the exact state.
                        inv.restore(id, b.clone()).unwrap();
                        assert_eq!(inv.counts(), before);
                        inv.release(&id).unwrap();
                    }
                }
                Op::Confirm(i) if !ids.is_empty() => {
                    let id = ids[i % ids.len()];
                    if let Some(exp) = inv.confirm(&id) {
                        assert_eq!(inv.counts().available(), before.available());
                        assert!(inv.due(t(1_000_000)).iter().all(|d| *d != id));
                        let _ = exp;
                    }
                }
                Op::Expire { advance } => {
                    now += Duration::seconds(advance);
                    for id in inv.due(now) {
                        let b = inv.release(&id).unwrap();
                        assert!(matches!(b.holding, Holding::Held { expires_at } if expires_at <= now));
                    }
                    assert!(inv.due(now).is_empty());
                }
                _ => {}
            }
            check(&inv);
        }
    }

    proptest! {
        #[test]
        fn general_admission_invariants_hold(ops in ops(), capacity in 0u32..25, limit in 1u32..12) {
            let mut inv = Inventory::general(capacity);
            inv.set_max_per_user(limit);
            run(inv, ops);
        }

        #[test]
        fn seated_invariants_hold(ops in ops(), limit in 1u32..12) {
            let mut inv = Inventory::seated(small_map());
            inv.set_max_per_user(limit);
            run(inv, ops);
        }
    }
}
