package watch

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Subscription starts one event source. notify is called for every event;
// onError for errors the source survives or dies of. The returned channel is
// closed when the source has ended (it ends by itself on a receive error, or
// when done is closed).
type Subscription struct {
	Name  string // a metric label: link or addr
	Start func(done <-chan struct{}, notify func(), onError func(error)) (<-chan struct{}, error)
}

// eventBuffer absorbs bursts between our reads; netlink drops the socket's
// overflow (ENOBUFS) and then the subscription ends and is restarted.
const eventBuffer = 256

// LinkSubscription watches RTM_NEWLINK/DELLINK in namespace ns.
func LinkSubscription(ns netns.NsHandle) Subscription {
	return Subscription{Name: "link", Start: func(done <-chan struct{}, notify func(), onError func(error)) (<-chan struct{}, error) {
		ch := make(chan netlink.LinkUpdate, eventBuffer)
		opts := netlink.LinkSubscribeOptions{Namespace: &ns, ErrorCallback: onError}
		if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
			return nil, fmt.Errorf("subscribing to link events: %w", err)
		}
		return drain(ch, notify), nil
	}}
}

// AddrSubscription watches address changes in namespace ns.
func AddrSubscription(ns netns.NsHandle) Subscription {
	return Subscription{Name: "addr", Start: func(done <-chan struct{}, notify func(), onError func(error)) (<-chan struct{}, error) {
		ch := make(chan netlink.AddrUpdate, eventBuffer)
		opts := netlink.AddrSubscribeOptions{Namespace: &ns, ErrorCallback: onError}
		if err := netlink.AddrSubscribeWithOptions(ch, done, opts); err != nil {
			return nil, fmt.Errorf("subscribing to address events: %w", err)
		}
		return drain(ch, notify), nil
	}}
}

func drain[T any](ch <-chan T, notify func()) <-chan struct{} {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for range ch {
			notify()
		}
	}()
	return ended
}
