//! Single-flight: when many requests miss on one key at once, the first
//! becomes the leader and fetches; the others wait for its result. If the
//! leader goes away without a result (its client hung up), the waiters see
//! the channel close and try again, one of them becoming the new leader.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Fetches in flight, by key.
pub(crate) struct Flights<T> {
    map: Mutex<HashMap<String, watch::Receiver<Option<T>>>>,
}

/// What a request does about a key.
pub(crate) enum Role<'a, T> {
    /// Nobody is fetching it: fetch, then [`Leader::finish`].
    Lead(Leader<'a, T>),
    /// Somebody is: wait with [`follow`].
    Follow(watch::Receiver<Option<T>>),
}

impl<T: Clone> Flights<T> {
    pub fn new() -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn join(&self, key: &str) -> Role<'_, T> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = map.get(key) {
            return Role::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.to_string(), rx);
        Role::Lead(Leader {
            flights: self,
            key: key.to_string(),
            tx,
        })
    }
}

/// The request fetching a key. Dropping it (finished or not) ends the flight.
pub(crate) struct Leader<'a, T> {
    flights: &'a Flights<T>,
    key: String,
    tx: watch::Sender<Option<T>>,
}

impl<T> Leader<'_, T> {
    /// Hands `value` to every waiter, present and arriving, then ends the flight.
    pub fn finish(self, value: T) {
        self.tx.send_replace(Some(value));
    }
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        self.flights
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// Waits for the leader's result; `None` if the leader gave up (try again).
pub(crate) async fn follow<T: Clone>(mut rx: watch::Receiver<Option<T>>) -> Option<T> {
    let result = rx.wait_for(Option::is_some).await.ok()?.clone();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_get_the_leaders_value_and_the_flight_ends() {
        let flights = Flights::<u32>::new();
        let Role::Lead(leader) = flights.join("k") else {
            panic!("first request must lead")
        };
        let Role::Follow(rx) = flights.join("k") else {
            panic!("second request must follow")
        };
        let waiter = tokio::spawn(follow(rx));
        leader.finish(7);
        assert_eq!(waiter.await.unwrap(), Some(7));
        assert!(matches!(flights.join("k"), Role::Lead(_)), "flight ended");
    }

    #[tokio::test]
    async fn a_vanished_leader_releases_waiters_to_retry() {
        let flights = Flights::<u32>::new();
        let leader = flights.join("k");
        let Role::Follow(rx) = flights.join("k") else {
            panic!("second request must follow")
        };
        drop(leader);
        assert_eq!(follow(rx).await, None);
        assert!(matches!(flights.join("k"), Role::Lead(_)));
    }
}
