# {{crate}}

{{description}}

This page is the crate's rustdoc and the "Behaviour" part of `docs/integrations/{{name}}.md`
(the rest of that page is generated from the descriptor). Say here what a user needs to know
that the descriptor cannot: what is sent and how it looks, the provider's limits, which errors
are retried, and what the live check does.
