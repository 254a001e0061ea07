/** Namespaces for the Herald targets: `bench` has no history (pure fan-out), `benchh` keeps 100 publications. */
export const heraldConfig = {
  channel: {
    namespaces: [
      { name: 'bench', allow_subscribe_for_client: true, allow_publish_for_client: true },
      {
        name: 'benchh',
        allow_subscribe_for_client: true,
        allow_publish_for_client: true,
        history_size: 100,
        history_ttl: '300s',
      },
    ],
  },
};
