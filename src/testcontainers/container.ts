// A GenericContainer on exactly one user-defined network, under a name (alias) on it.
//
// testcontainers' withNetwork() + withNetworkAliases() creates the container on Docker's default
// `bridge` network and then connects it to the user network as well, so it would sit on two
// networks and a "network disconnect" fault would not cut it off cleanly. Here the container is
// created on the user network alone, with its aliases in the create request.

import { GenericContainer, type StartedNetwork } from "testcontainers";

export class NetworkedContainer extends GenericContainer {
  /** On `network` only, reachable there as `aliases`. */
  onNetwork(network: StartedNetwork, ...aliases: string[]): this {
    this.withNetworkMode(network.getName());
    this.createOpts.NetworkingConfig = { EndpointsConfig: { [network.getName()]: { Aliases: aliases } } };
    return this;
  }
}
