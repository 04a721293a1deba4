package placement

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// HostNetworkOffers is what each declared host network asks of a node. It
// is the one read in this package: the offers it returns feed the pure
// NodeLabels, Evaluate and ChangedRequirements.
func HostNetworkOffers(ctx context.Context, c client.Reader) ([]HostNetworkOffer, error) {
	var list vmv1alpha1.HostNetworkList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list HostNetworks: %w", err)
	}
	return OffersOf(list.Items), nil
}

// OffersOf is what each of the given host networks asks of a node.
func OffersOf(hostNetworks []vmv1alpha1.HostNetwork) []HostNetworkOffer {
	offers := make([]HostNetworkOffer, 0, len(hostNetworks))
	for i := range hostNetworks {
		offers = append(offers, OfferOf(&hostNetworks[i]))
	}
	return offers
}
