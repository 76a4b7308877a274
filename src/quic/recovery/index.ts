/** Loss recovery and congestion control (RFC 9002), as sans-IO modules. */
export * from "./congestion-controller.ts";
export * from "./cubic.ts";
export * from "./loss-detection.ts";
export * from "./new-reno.ts";
export * from "./pacer.ts";
export * from "./rtt-estimator.ts";
export * from "./sent-packet.ts";
export * from "./sent-packets.ts";
