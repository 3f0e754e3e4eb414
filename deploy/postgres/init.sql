-- The cluster profile's router keeps its projections in a database of its own.
CREATE DATABASE plaint_cluster;
