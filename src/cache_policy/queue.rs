//! A FIFO queue of keyed, weighted entries with O(1) push, removal by key
//! and walking from the oldest end: a doubly-linked list over a slab, the
//! one building block of every eviction policy here.

use std::collections::HashMap;
use std::hash::Hash;

/// No node: the end of the list.
pub(super) const NIL: usize = usize::MAX;

#[derive(Debug)]
pub(super) struct Node<K> {
    pub key: K,
    pub weight: u64,
    /// Policy state: SIEVE's visited bit, S3-FIFO's access count.
    pub freq: u8,
    /// Towards the newest entry (the head).
    prev: usize,
    /// Towards the oldest entry (the tail).
    next: usize,
}

/// Entries from the head (newest) to the tail (oldest), with their total weight.
#[derive(Debug)]
pub(super) struct Queue<K> {
    nodes: Vec<Node<K>>,
    free: Vec<usize>,
    index: HashMap<K, usize>,
    head: usize,
    tail: usize,
    used: u64,
}

impl<K: Clone + Eq + Hash> Queue<K> {
    pub fn new() -> Self {
        Queue {
            nodes: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            head: NIL,
            tail: NIL,
            used: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Total weight of the entries.
    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn find(&self, key: &K) -> Option<usize> {
        self.index.get(key).copied()
    }

    pub fn node(&self, at: usize) -> &Node<K> {
        &self.nodes[at]
    }

    pub fn node_mut(&mut self, at: usize) -> &mut Node<K> {
        &mut self.nodes[at]
    }

    /// The oldest entry.
    pub fn tail(&self) -> usize {
        self.tail
    }

    /// The next newer entry than `at` (`NIL` past the head).
    pub fn newer(&self, at: usize) -> usize {
        self.nodes[at].prev
    }

    /// Adds `key` as the newest entry; the caller ensures it is absent.
    pub fn push_head(&mut self, key: K, weight: u64, freq: u8) -> usize {
        let node = Node {
            key: key.clone(),
            weight,
            freq,
            prev: NIL,
            next: self.head,
        };
        let at = match self.free.pop() {
            Some(at) => {
                self.nodes[at] = node;
                at
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        if self.head != NIL {
            self.nodes[self.head].prev = at;
        }
        self.head = at;
        if self.tail == NIL {
            self.tail = at;
        }
        self.index.insert(key, at);
        self.used += weight;
        at
    }

    /// Unlinks the entry at `at`, returning its key, weight and state.
    pub fn remove_at(&mut self, at: usize) -> (K, u64, u8) {
        let (prev, next) = (self.nodes[at].prev, self.nodes[at].next);
        if prev != NIL {
            self.nodes[prev].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.nodes[next].prev = prev;
        } else {
            self.tail = prev;
        }
        let node = &self.nodes[at];
        self.index.remove(&node.key);
        self.used -= node.weight;
        self.free.push(at);
        (node.key.clone(), node.weight, node.freq)
    }

    pub fn remove(&mut self, key: &K) -> Option<(K, u64, u8)> {
        let at = self.find(key)?;
        Some(self.remove_at(at))
    }

    pub fn pop_tail(&mut self) -> Option<(K, u64, u8)> {
        (self.tail != NIL).then(|| self.remove_at(self.tail))
    }

    /// Moves the entry at `at` to the head (LRU's hit).
    pub fn move_to_head(&mut self, at: usize) {
        if self.head == at {
            return;
        }
        let (key, weight, freq) = self.remove_at(at);
        self.push_head(key, weight, freq);
    }
}
